"""btanalyze: read Bluetooth captures fast, rebuild what happened, and say what went wrong."""

from __future__ import annotations

from analyzer.capture import Capture, CaptureError
from analyzer.readers import load

__version__ = "0.1.0"
__all__ = ["Analysis", "Capture", "CaptureError", "analyze", "load"]


def __getattr__(name: str) -> object:
    # lazy: `import analyzer` stays light for `btanalyze info`
    if name in ("analyze", "Analysis"):
        from analyzer import analysis

        return getattr(analysis, name)
    raise AttributeError(name)
