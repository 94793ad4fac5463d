"""The stored HCI name tables equal what the installed bumble derives (refresh with
``python -m analyzer.decode.hci_names``)."""

from __future__ import annotations

from analyzer.decode import hci_names


def test_stored_tables_match_bumble() -> None:
    built = hci_names._build()
    loaded = hci_names._load()
    assert all(built[k] for k in ("commands", "events", "companies", "uuid16"))
    assert loaded == built, (
        "analyzer/decode/hci_tables.json is stale: python -m analyzer.decode.hci_names"
    )
    assert hci_names.command_name(0x0405) == "Create Connection"
    assert hci_names.event_name(0x05) == "Disconnection Complete"
