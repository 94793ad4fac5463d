"""Rule tests: the scenario manifest — every expected finding of these rules fires; clean
captures stay silent.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules.helpers import MANIFEST, MINE, _no_rule_errors, _scen


@pytest.mark.parametrize("entry", MANIFEST["captures"], ids=lambda e: e["file"])
def test_manifest_expectations(entry: dict[str, Any]) -> None:
    a = _scen(entry["file"])
    _no_rule_errors(a)
    got = {f.id for f in a.findings if f.id in MINE}
    want = set(entry["expected_findings"]) & MINE
    assert want <= got, [f.message for f in a.findings]
    if entry["group"] != "faults":
        # nothing goes wrong in these: no error or warning; the one info allowed is
        # codec_choice where the description says the phone picked a lesser codec than the
        # headset's LDAC (ground truth: the headset offers SBC, AAC and LDAC)
        loud = [f for f in a.findings if f.id in MINE and f.severity != "info"]
        assert loud == [], [f.message for f in loud]
        info = {f.id for f in a.findings if f.id in MINE and f.severity == "info"}
        # ... and what the scenario expects at info (an interval change is legitimate)
        assert info <= {"codec_choice"} | want
    else:
        unexpected = {f.id for f in a.findings if f.id in MINE and f.severity != "info"} - want
        assert unexpected == set(), [f.message for f in a.findings]
