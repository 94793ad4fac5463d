"""Findings, decode anomalies and timeline events: what the report and dashboard lead with."""

from __future__ import annotations

from dataclasses import field

from analyzer.model.base import DetailValue, record


@record
class Finding:
    """One diagnosis with its evidence; ``key`` identifies the same problem across captures."""

    id: str
    severity: str
    title: str
    message: str  # one line naming devices and numbers
    explanation: str  # what the spec expects and what happened
    fix: str  # what the user can do
    address: str | None = None
    connection: str | None = None
    time_us: int | None = None
    frames: list[int] = field(default_factory=list)
    count: int = 1
    details: dict[str, DetailValue] = field(default_factory=dict)
    #: stable identity: ``<id>:<rule key>`` (e.g. ``hci_command_failed:0x0C03/0x0C``); the same
    #: problem in two captures has the same key, so a store can count it and a page link to it
    key: str = ""
    #: this finding in this analysis ("F1", "F2" … in report order) and the incident it is part of
    ref: str = ""
    incident: str | None = None
    #: the same procedure succeeded later in the capture (a retry connected, a re-pair bonded)
    recovered_at_frame: int | None = None
    recovered_time_us: int | None = None
    #: the evidence frames as "file #n" when the capture joins several files (else empty)
    frame_refs: list[str] = field(default_factory=list)


@record
class Incident:
    """Findings that tell one story: a root cause, its consequences in time order, and the
    recovery if one happened within the capture."""

    id: str  # "I1", "I2" … in report order
    severity: str  # the worst of its findings (after recovery grading)
    verdict: str  # one line: what went wrong, and whether it recovered
    root_cause: str  # ref of the finding that explains the others
    consequences: list[str] = field(default_factory=list)  # refs, in time order
    recovered_at_frame: int | None = None
    devices: list[str] = field(default_factory=list)
    start_time_us: int | None = None
    end_time_us: int | None = None


@record
class Suppressed:
    """Protocol behaviour a rule recognised as benign and did not report, and why."""

    rule: str
    what: str
    why: str
    frames: list[int] = field(default_factory=list)
    address: str | None = None
    connection: str | None = None
    time_us: int | None = None


@record
class Anomaly:
    """A decode-level oddity (Wireshark's expert info): short PDU, unknown opcode, bad length."""

    frame: int
    layer: str
    message: str


@record
class TimelineEvent:
    time_us: int
    frame: int
    lane: str  # device address, connection id or "controller"
    kind: str  # connect / disconnect / pair / sdp / avdtp / stream_state / slc / call / sco / adv
    text: str
    severity: str = "info"
