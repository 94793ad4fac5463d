"""Findings into incidents: a root cause, its consequences in time order, and the recovery when
the same procedure succeeded later in the capture — with severity by what the user noticed.

Recovery (the capture shows the failure was overcome):

* ``connection_failed`` / ``link_loss``: a later connection to the same device came up;
* ``pairing_failed`` / ``auth_key_missing``: a later pairing with the device succeeded;
* ``encryption_failed``: a later encryption of a link to the device succeeded;
* ``l2cap_connection_refused``: a later channel to the same PSM on that link opened;
* ``hci_command_failed``: the same command succeeded later;
* ``sdp_error``: the same request to the device was later answered without error.

A recovered failure is a warning at most and says "recovered at frame N after X s".

Incidents group findings that tell one story: a link loss and the media stall just before it;
AVDTP rejects and the audio that fell back to HFP; a hardware error and the controller reset
that followed; periodic drops and the short connections they are made of; and link losses of
several devices within :data:`LOCAL_CAUSE_S` (one cause on the capturing side, not several
remote problems). Every other finding is an incident of its own. Incidents group findings, they
never remove them.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, TypeVar

from analyzer.model import Analysis, Connection, Finding, Incident
from analyzer.model.analysis import memo
from analyzer.rules.base import SEVERITY_RANK

#: link losses of different devices this close together share one cause
LOCAL_CAUSE_S = 1.0
#: (root rule, consequence rule, tie): the consequence belongs to the root's incident
CAUSES: tuple[tuple[str, str, str], ...] = (
    ("link_loss", "a2dp_media_stall", "connection"),
    ("avdtp_rejected", "a2dp_fallback_hfp", "address"),
    ("hardware_error", "controller_reset", "capture"),
    ("periodic_disconnect", "short_connection", "address"),
    ("auth_key_missing", "connection_failed", "address"),
)

Recovery = tuple[int, int | None]  # (frame, time_us)
T = TypeVar("T")


def _after(f: Finding) -> int:
    return max(f.frames) if f.frames else 0


class _Later(Generic[T]):
    """Rows by key, each key's rows by frame: the first row after a frame is a bisect (one
    look-up per finding, not a scan of the capture: issue 18 §2)."""

    def __init__(self, rows: Iterable[tuple[Hashable, int, T]]) -> None:
        groups: dict[Hashable, list[tuple[int, int, T]]] = {}
        for n, (key, frame, x) in enumerate(rows):
            groups.setdefault(key, []).append((frame, n, x))
        self.frames: dict[Hashable, list[int]] = {}
        self.items: dict[Hashable, list[T]] = {}
        for key, g in groups.items():
            g.sort(key=lambda r: (r[0], r[1]))
            self.frames[key] = [r[0] for r in g]
            self.items[key] = [r[2] for r in g]

    def first_after(self, key: Hashable, frame: int) -> tuple[int, T] | None:
        frames = self.frames.get(key)
        if frames is None:
            return None
        k = bisect.bisect_right(frames, frame)
        return (frames[k], self.items[key][k]) if k < len(frames) else None


def _later(
    a: Analysis, name: str, rows: Callable[[], Iterable[tuple[Hashable, int, T]]]
) -> _Later[T]:
    return memo(a, f"incidents:{name}", lambda: _Later(rows()))


def _detail(f: Finding, name: str) -> Hashable:
    v = f.details.get(name)
    return tuple(v) if isinstance(v, list) else v


def _reconnected(a: Analysis, f: Finding) -> Recovery | None:
    """A later connection to the device; for a failed set-up, one started by the same side (a
    retry), not the device connecting on its own much later."""
    failed = a.connection(f.connection)
    side = failed.initiator if failed is not None and not failed.ok else None

    def rows() -> Iterator[tuple[Hashable, int, Connection]]:
        for c in a.connections:
            if (
                c.ok
                and not c.inferred
                and c.address is not None
                and c.transport in ("br_edr", "le")
            ):
                yield (c.address, c.initiator), c.start_frame or 0, c
                yield (c.address, "any side"), c.start_frame or 0, c

    later = _later(a, "reconnected", rows)
    sides = ("any side",) if side is None else (side, None)
    found = [x for s in sides if (x := later.first_after((f.address, s), _after(f)))]
    if not found:
        return None
    c = min(found, key=lambda x: x[0])[1]
    return c.start_frame or 0, c.start_time_us


def _repaired(a: Analysis, f: Finding) -> Recovery | None:
    later = _later(
        a,
        "repaired",
        lambda: ((p.address, p.start_frame, p) for p in a.pairing if p.outcome == "success"),
    )
    found = later.first_after(f.address, _after(f))
    if found is None:
        return None
    p = found[1]
    return (p.frames[-1] if p.frames else p.start_frame), p.end_time_us


def _encrypted_later(a: Analysis, f: Finding) -> Recovery | None:
    later = _later(
        a,
        "encrypted",
        lambda: (
            (c.address, x, x) for c in a.connections if c.encrypted for x in c.encryption_ok_frames
        ),
    )
    found = later.first_after(f.address, _after(f))
    return (found[0], None) if found is not None else None


def _channel_opened(a: Analysis, f: Finding) -> Recovery | None:
    later = _later(
        a,
        "channel_opened",
        lambda: (
            ((ch.connection, ch.psm), ch.request_frame or 0, ch)
            for ch in a.l2cap_channels
            if ch.result == 0
        ),
    )
    found = later.first_after((f.connection, _detail(f, "psm")), _after(f))
    if found is None:
        return None
    ch = found[1]
    return ch.response_frame or ch.request_frame or 0, ch.open_time_us


def _command_succeeded(a: Analysis, f: Finding) -> Recovery | None:
    later = _later(
        a,
        "command_succeeded",
        lambda: ((tx.opcode, tx.frame, tx) for tx in a.hci_commands if tx.status == 0),
    )
    found = later.first_after(_detail(f, "opcode"), _after(f))
    if found is None:
        return None
    tx = found[1]
    return tx.status_frame or tx.frame, tx.status_time_us


def _sdp_answered(a: Analysis, f: Finding) -> Recovery | None:
    later = _later(
        a,
        "sdp_answered",
        lambda: (
            ((t.address, t.pdu), t.request_frame, t)
            for t in a.sdp
            if t.error_code is None and t.response_frame is not None
        ),
    )
    found = later.first_after((f.address, _detail(f, "pdu")), _after(f))
    if found is None:
        return None
    t = found[1]
    return t.response_frame or 0, t.response_time_us


RECOVERIES: dict[str, Callable[[Analysis, Finding], Recovery | None]] = {
    "connection_failed": _reconnected,
    "link_loss": _reconnected,
    "pairing_failed": _repaired,
    "auth_key_missing": _repaired,
    "encryption_failed": _encrypted_later,
    "l2cap_connection_refused": _channel_opened,
    "hci_command_failed": _command_succeeded,
    "sdp_error": _sdp_answered,
}


def _grade_recovery(a: Analysis, f: Finding) -> None:
    find = RECOVERIES.get(f.id)
    rec = find(a, f) if find is not None else None
    if rec is None:
        return
    frame, t = rec
    f.recovered_at_frame, f.recovered_time_us = frame, t
    if f.severity == "error":
        f.severity = "warning"
    took = f" after {(t - f.time_us) / 1e6:.1f} s" if t is not None and f.time_us else ""
    f.message += f"; recovered at frame {frame}{took}"


def _tie_key(f: Finding, tie: str) -> Hashable:
    """What ties a root and its consequence (None: nothing to tie by)."""
    if tie == "connection":
        return f.connection
    if tie == "address":
        return f.address
    return "capture"


def build_incidents(a: Analysis, findings: list[Finding]) -> tuple[list[Finding], list[Incident]]:
    """Grade recoveries, order the findings (refs F1…), and group them into incidents (I1…)."""
    for f in findings:
        _grade_recovery(a, f)
    findings.sort(key=lambda f: (SEVERITY_RANK[f.severity], f.time_us or 0, f.id))
    for i, f in enumerate(findings, 1):
        f.ref = f"F{i}"
    root_of: dict[str, str] = {}  # consequence ref → root ref
    for root_id, cons_id, tie in CAUSES:
        first_root: dict[Hashable, Finding] = {}  # tie key → the first root with it
        for r in findings:
            if r.id == root_id and (key := _tie_key(r, tie)) is not None:
                first_root.setdefault(key, r)
        for c in findings:
            if c.id == cons_id and c.ref not in root_of:
                head = first_root.get(_tie_key(c, tie))
                if head is not None and head.ref != c.ref:
                    root_of[c.ref] = head.ref
    losses = sorted(
        (f for f in findings if f.id == "link_loss" and f.ref not in root_of and f.time_us),
        key=lambda f: f.time_us or 0,
    )
    for x, y in itertools.pairwise(losses):
        if y.address != x.address and (y.time_us or 0) - (x.time_us or 0) <= LOCAL_CAUSE_S * 1e6:
            root_of[y.ref] = root_of.get(x.ref, x.ref)
    by_ref = {f.ref: f for f in findings}
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        root = f.ref
        while root in root_of:
            root = root_of[root]
        groups.setdefault(root, []).append(f)
    incidents = [_incident(by_ref[r], members) for r, members in groups.items()]
    incidents.sort(
        key=lambda i: (
            i.recovered_at_frame is not None,
            SEVERITY_RANK[i.severity],
            -len(i.consequences),
            i.start_time_us or 0,
        )
    )
    for n, inc in enumerate(incidents, 1):
        old = inc.id
        inc.id = f"I{n}"
        for f in groups[old]:
            f.incident = inc.id
    return findings, incidents


def _incident(root: Finding, members: list[Finding]) -> Incident:
    cons = sorted((f for f in members if f is not root), key=lambda f: f.time_us or 0)
    sev = min((f.severity for f in members), key=lambda s: SEVERITY_RANK[s])
    devices = sorted({f.address for f in members if f.address})
    times = [f.time_us for f in members if f.time_us is not None]
    verdict = root.message
    local = root.id == "link_loss" and any(c.id == "link_loss" for c in cons)
    if local:
        verdict = (
            f"{len(devices)} devices lost their links within {LOCAL_CAUSE_S:g} s: one cause on "
            f"the capturing side (its controller, radio or surroundings), first: {root.message}"
        )
    elif cons:
        verdict += "; then: " + "; ".join(dict.fromkeys(c.title for c in cons))
    return Incident(
        id=root.ref,  # renumbered by the caller
        severity=sev,
        verdict=verdict,
        root_cause=root.ref,
        consequences=[c.ref for c in cons],
        recovered_at_frame=root.recovered_at_frame,
        devices=devices,
        start_time_us=min(times) if times else None,
        end_time_us=max(times) if times else None,
    )


__all__ = ["CAUSES", "RECOVERIES", "build_incidents"]
