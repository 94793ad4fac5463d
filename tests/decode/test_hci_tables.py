"""The stored HCI name tables equal what the installed bumble derives (refresh with
``python -m analyzer.decode.hci_names``)."""

from __future__ import annotations

import json
import subprocess
import sys

from analyzer.decode import hci_names


def test_stored_tables_match_bumble() -> None:
    # derived in a fresh interpreter: other tests import bumble modules that add UUID names
    code = (
        "import json; from analyzer.decode.hci_names import _build; "
        "print(json.dumps(_build(), sort_keys=True))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    built = {k: {int(x): v for x, v in t.items()} for k, t in json.loads(out.stdout).items()}
    assert all(built[k] for k in ("commands", "events", "companies", "uuid16"))
    loaded = hci_names._load()
    assert loaded == built, (
        "analyzer/decode/hci_tables.json is stale: run python -m analyzer.decode.hci_names"
    )
    assert hci_names.command_name(0x0405) == "Create Connection"
    assert hci_names.event_name(0x05) == "Disconnection Complete"
