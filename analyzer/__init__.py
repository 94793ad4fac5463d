"""btanalyze: read Bluetooth captures fast, rebuild what happened, and say what went wrong."""

from __future__ import annotations

from analyzer.capture import Capture, CaptureError
from analyzer.readers import load

__all__ = ["Capture", "CaptureError", "load"]
__version__ = "0.1.0"
