"""btanalyze: read Bluetooth captures fast, rebuild what happened, and say what went wrong."""

from __future__ import annotations

import os as _os
import sys as _sys

# Before polars loads: its allocator (jemalloc) keeps freed pages for 10 s by default, so every
# large temporary of one build stage stayed resident through the next ones; return them at once
# (a user's own setting wins). Costs ~0.1 s of system time on a 1M-frame log, saves ~100 MB.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def _cache_bytecode() -> None:
    """Compile our modules' bytecode where the interpreter will not write it itself
    (PYTHONDONTWRITEBYTECODE, an editable install): recompiling ~130 modules cost ~0.1 s of
    every run, and each module edited since the last compile ~3 ms. Only this package's own
    ``__pycache__`` is written (as pip does at install); a stamp there says when, so a run
    whose sources are older costs one directory scan (~1 ms)."""
    here = _os.path.dirname(__file__)
    if not _sys.dont_write_bytecode or not _os.access(here, _os.W_OK):
        return  # the interpreter caches itself, or a read-only install: nothing to do
    stamp = _os.path.join(here, "__pycache__", "bytecode.stamp")
    newest, stack = 0.0, [here]
    try:
        while stack:
            for entry in _os.scandir(stack.pop()):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime)
        if newest <= _os.stat(stamp).st_mtime:
            return
    except OSError:
        pass  # no stamp yet
    import compileall
    import contextlib

    with contextlib.suppress(OSError):  # nothing cached, nothing lost
        compileall.compile_dir(here, quiet=2, workers=1)
        with open(stamp, "w"):
            pass


_cache_bytecode()

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from analyzer.analysis import Analysis, CaptureAnalysis, analyze, open_capture
    from analyzer.capture import Capture, CaptureError
    from analyzer.readers import load

__version__ = "0.1.0"
__all__ = [
    "Analysis",
    "Capture",
    "CaptureAnalysis",
    "CaptureError",
    "analyze",
    "load",
    "open_capture",
]


def __getattr__(name: str) -> object:
    # lazy: `import analyzer` loads neither polars nor the model (``btanalyze info`` on a
    # btsnoop log reads it with numpy alone)
    if name in ("analyze", "Analysis", "open_capture", "CaptureAnalysis"):
        from analyzer import analysis

        return getattr(analysis, name)
    if name in ("Capture", "CaptureError"):
        from analyzer import capture

        return getattr(capture, name)
    if name == "load":
        from analyzer.readers import load

        return load
    raise AttributeError(name)
