"""docs/validation.md is current and covers every error and warning the tool reports on the
shared corpus with a reviewed verdict (tests/validation/verdicts.py); no verdict is left for a
finding that no longer exists."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES, analysis_of
from tests.validation.verdicts import OUT, VERDICTS, key_of, render, rows


@pytest.fixture(scope="module")
def reported() -> list[tuple[str, object]]:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    return rows(analysis_of)  # type: ignore[return-value]


def test_every_error_and_warning_has_a_verdict(reported: list) -> None:  # type: ignore[type-arg]
    keys = {key_of(name, f) for name, f in reported}
    assert sorted(keys - set(VERDICTS)) == [], "review these findings and add their verdicts"
    assert sorted(set(VERDICTS) - keys) == [], "these reviewed findings are gone: update"


def test_validation_doc_is_current(reported: list) -> None:  # type: ignore[type-arg]
    assert OUT.read_text() == render(analysis_of), "run: python -m tests.validation.verdicts"
