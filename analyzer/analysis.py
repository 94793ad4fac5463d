"""The façade: ``analyzer.analyze(path)`` → :class:`~analyzer.model.Analysis`.

The result holds no capture bytes (it pickles, caches and round-trips through JSON); the
:class:`CaptureAnalysis` runtime object keeps the mapped capture beside it for frame drill-down.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass

from analyzer.capture import Capture
from analyzer.model import SCHEMA, TABLES, Analysis
from analyzer.rules.base import RuleConfig, run_rules


@dataclass
class CaptureAnalysis:
    """A capture (mapped, for drill-down into frames) and its analysis."""

    capture: Capture
    analysis: Analysis

    def payload(self, frame: int) -> bytes:
        """The bytes of frame ``frame`` (1-based, as Wireshark numbers frames)."""
        return self.capture.payload(frame)


def load_stages() -> None:
    """Import the build stages and the rules an analysis runs (each module registers itself):
    a command may do it while something else is under way (a prefetched read)."""
    from analyzer.rules.base import load_all
    from analyzer.sessions.build import load_session_modules

    load_session_modules()
    load_all()


def analyze_capture(
    cap: Capture,
    config: RuleConfig | None = None,
    *,
    device: str | None = None,
    time_from_us: int | None = None,
    time_to_us: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Rebuild sessions from a capture, then run the rules. ``progress`` is told each phase
    as it starts ("frame index", "links and channels", each build stage, "rules")."""
    from analyzer.sessions.build import rebuild

    # no cyclic garbage collection during the build: it makes few cycles, and each collection
    # would walk every model object made so far (the modules' objects frozen out of it too)
    was_enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        analysis = rebuild(
            cap, device=device, time_from_us=time_from_us, time_to_us=time_to_us,
            progress=progress,
        )  # fmt: skip
        if progress is not None:
            progress("rules")
        analysis.findings = run_rules(analysis, config)
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
    if len(analysis.capture.extra.sources) > 1:  # joined files: cite frames per file
        for f in analysis.findings:
            f.frame_refs = [analysis.frame_ref(x) for x in f.frames]
    return analysis


def open_capture(
    path: str | os.PathLike[str],
    config: RuleConfig | None = None,
    *,
    log: str | None = None,
    device: str | None = None,
    time_from_us: int | None = None,
    time_to_us: int | None = None,
) -> CaptureAnalysis:
    """Read and analyse a capture, keeping the capture for frame drill-down."""
    from analyzer.readers import load

    cap = load(path, log=log)
    a = analyze_capture(
        cap, config, device=device, time_from_us=time_from_us, time_to_us=time_to_us
    )
    return CaptureAnalysis(cap, a)


def analyze(
    path: str | os.PathLike[str],
    config: RuleConfig | None = None,
    *,
    log: str | None = None,
    device: str | None = None,
    time_from_us: int | None = None,
    time_to_us: int | None = None,
) -> Analysis:
    """Read and analyse a capture file: ``analyzer.analyze("btsnoop_hci.log").to_json()``."""
    return open_capture(
        path, config, log=log, device=device, time_from_us=time_from_us, time_to_us=time_to_us
    ).analysis


__all__ = ["SCHEMA", "TABLES", "Analysis", "CaptureAnalysis", "analyze", "analyze_capture",
           "open_capture"]  # fmt: skip
