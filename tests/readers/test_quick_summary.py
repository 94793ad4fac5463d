"""``btanalyze info`` on a btsnoop log reads the reader's columns alone (issue 17: no frame
table, no polars): its summary is the one the full reader gives, on every btsnoop capture of the
corpus (H4, HCI-without-type and monitor logs, filtered logs, logs with drops), and it declines
— the full reader then answers — on damaged, compressed and btsnooz inputs."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import readers
from analyzer.readers import btsnoop, load
from tests.builders import damaged_copies
from tests.conftest import REPO, container_format, corpus

CAPTURES = [p for p in corpus() if p.exists() and container_format(p) == "btsnoop"]

pytestmark = pytest.mark.skipif(readers._ext is None, reason="the compiled walk is not built")


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_quick_summary_is_the_full_readers(path: Path) -> None:
    quick = btsnoop.quick_summary(str(path))
    full = load(str(path)).summary()
    if quick is None:  # declined: only where the compiled walk cannot read the whole file
        assert full["damaged_bytes"] or any("padding" in w or "second btsnoop" in w
                                            for w in full["warnings"]) or (
            full["format"] != "btsnoop"
        ), path.name  # fmt: skip
        return
    assert quick == full
    assert list(quick) == list(full)  # the same keys in the same order: the same JSON text


def test_quick_summary_is_taken_and_declines(tmp_path: Path) -> None:
    """Taken on (nearly) every clean btsnoop log; declined on damaged and gzip copies, whose
    summary the full reader gives (with its warnings)."""
    taken = [p for p in CAPTURES if btsnoop.quick_summary(str(p)) is not None]
    assert len(taken) >= 0.9 * len(CAPTURES), (len(taken), len(CAPTURES))
    src = taken[0].read_bytes()
    gz = tmp_path / "log.gz"
    gz.write_bytes(gzip.compress(src))
    assert btsnoop.quick_summary(str(gz)) is None
    for k, b in enumerate(damaged_copies(src, "quick", 6)):
        bad = tmp_path / f"bad{k}.log"
        bad.write_bytes(b)
        quick = btsnoop.quick_summary(str(bad))
        full = load(str(bad)).summary()
        assert quick is None or quick == full, k
        if full["damaged_bytes"] or full["warnings"]:
            assert quick is None or quick["warnings"] == full["warnings"], k
    assert btsnoop.quick_summary(str(tmp_path / "missing.log")) is None


def test_info_on_a_btsnoop_log_loads_no_polars() -> None:
    """The point of the quick path: ``btanalyze info`` neither imports polars nor the model."""
    path = next(p for p in CAPTURES if btsnoop.quick_summary(str(p)) is not None)
    code = (
        "import sys\n"
        "from analyzer.commands.info import command\n"
        f"command.main([{str(path)!r}, '--json'], standalone_mode=False)\n"
        "print(sorted(m for m in ('polars', 'analyzer.model') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120, check=True)  # fmt: skip
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
    assert '"frames"' in out.stdout
