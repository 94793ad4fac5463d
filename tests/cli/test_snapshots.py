"""Snapshots of the report (issue 16 acceptance): the text report at 80 and 120 columns and the
Markdown output of three bundled captures — a headset log (Android, OPPO earbuds), an LE app log
(a scenario: a GATT write refused) and a sniffer capture (crackle's LE pairing). A change to the
report shows here as a diff to review; refresh with
``python -m pytest tests/cli/test_snapshots.py --update-golden``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_report import _run
from tests.conftest import GOLDEN_CHANGES, REPO, update_golden

SNAP = REPO / "tests" / "golden" / "reports"
CAPTURES = [
    REPO / "captures" / "real" / "Swastik36_OPPO-Earbuds_btsnoop_hci.log",
    REPO / "captures" / "scenarios" / "le_att_insufficient_authentication.btsnoop",
    REPO / "captures" / "real" / "mikeryan_crackle_pairing_and_ltk_exchange.pcap",
]
VIEWS = [("text", 80), ("text", 120), ("markdown", 100)]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize(("fmt", "columns"), VIEWS, ids=str)
def test_report_snapshot(
    path: Path, fmt: str, columns: int, request: pytest.FixtureRequest
) -> None:
    r = _run("analyze", "--format", fmt, str(path.relative_to(REPO)), columns=columns)
    assert r.returncode == 0, r.stderr
    got = r.stdout
    if fmt == "text":  # every device address appears whole, whatever the width
        import json

        doc = json.loads(_run("analyze", "--json", str(path)).stdout)
        for d in doc["devices"]:
            assert d["address"] in got, d["address"]
    target = SNAP / f"{path.stem}.{fmt}.{columns}.txt"
    if update_golden(request):
        if not target.exists() or target.read_text() != got:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(got)
            GOLDEN_CHANGES.append(f"reports/{target.name}: rewritten")
        return
    assert target.exists(), f"no snapshot {target}: create it with --update-golden"
    assert got == target.read_text(), f"{target.name} changed: review, then --update-golden"
