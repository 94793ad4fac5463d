"""btanalyze: read Bluetooth captures fast, rebuild what happened, and say what went wrong."""

from __future__ import annotations

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
    # lazy: `import analyzer` stays light for `btanalyze info`
    if name in ("analyze", "Analysis", "open_capture", "CaptureAnalysis"):
        from analyzer import analysis

        return getattr(analysis, name)
    raise AttributeError(name)
