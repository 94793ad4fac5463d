"""Rule tests: the real corpus: no rule crashes, and every finding names a frame that exists.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.rules.helpers import MINE, _analysis, _no_rule_errors


@pytest.mark.slow
def test_real_corpus_runs_clean() -> None:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    for p in sorted(SHARED_CAPTURES.iterdir()):
        if not p.is_file() or p.suffix == ".md":
            continue
        try:
            a = _analysis(p)
        except Exception:
            continue
        _no_rule_errors(a)
        n = a.capture.frames
        for f in a.findings:
            if f.id in MINE:
                assert all(0 < fr <= n for fr in f.frames), (p.name, f.id, f.frames)
                assert f.message and f.explanation and f.fix
