"""What the capture was, as the result keeps it (the mmap'd :class:`~analyzer.capture.Capture`
stays with the runtime, never in the result)."""

from __future__ import annotations

from dataclasses import field

from analyzer.model.base import record


@record
class InterfaceInfo:
    """A pcapng Interface Description Block."""

    link_type: int
    tsresol: int | None = None
    tsoffset: int | None = None
    name: str | None = None


@record
class BtsnoozInfo:
    version: int
    form: str
    records: int
    relative_times: bool = False


@record
class LogInfo:
    """One log inside a bugreport or zip."""

    name: str
    frames: int | None = None
    first_time: str | None = None
    last_time: str | None = None
    format: str | None = None
    filtered: bool = False
    parts: list[str] = field(default_factory=list)  # rotated parts merged into this log


@record
class FrameSource:
    """A file whose frames this capture holds (a bugreport's ``.last`` joined to its current log):
    frames ``first_frame`` … ``first_frame + frames - 1`` are that file's frames 1 … ``frames``."""

    name: str
    first_frame: int
    frames: int


@record
class CaptureExtra:
    """Container details a reader reports beside the frames (all optional)."""

    byte_order: str | None = None
    time_resolution: str | None = None
    snaplen: int | None = None
    interfaces: list[InterfaceInfo] = field(default_factory=list)
    btsnooz: BtsnoozInfo | None = None
    payloads_cut: str | None = None
    container: str | None = None
    selected: str | None = None
    logs: list[LogInfo] = field(default_factory=list)
    #: several files joined into this capture: where each one's frames are
    sources: list[FrameSource] = field(default_factory=list)


@record
class DamagedRangeInfo:
    """A byte range the reader could not parse and skipped."""

    start: int
    end: int
    reason: str

    def __str__(self) -> str:
        return (
            f"skipped {self.end - self.start} damaged bytes at offset {self.start}"
            f"-{self.end} ({self.reason})"
        )


@record
class CaptureSummary:
    """The ``info`` view of a capture plus the facts rules need about its completeness."""

    path: str
    format: str
    link_type: int | None
    link_type_name: str
    size: int
    compressed: bool = False
    filtered: bool = False
    frames: int = 0
    frames_by_kind: dict[str, int] = field(default_factory=dict)
    frames_by_direction: dict[str, int] = field(default_factory=dict)
    first_time: str | None = None
    last_time: str | None = None
    first_time_us: int | None = None
    last_time_us: int | None = None
    duration_s: float | None = None
    truncated: int = 0
    drops: int = 0
    damaged_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    extra: CaptureExtra = field(default_factory=CaptureExtra)
    truncated_frames: list[int] = field(default_factory=list)  # the first few
    time_backwards: int = 0  # how often a frame's time is before the previous frame's
    time_backwards_frames: list[int] = field(default_factory=list)  # the first few
    damaged: list[DamagedRangeInfo] = field(default_factory=list)


@record
class Scope:
    """What part of the capture the analysis covers (``--device``, ``--from``/``--to``)."""

    device: str | None = None
    time_from_us: int | None = None
    time_to_us: int | None = None

    @property
    def narrowed(self) -> bool:
        return self.device is not None
