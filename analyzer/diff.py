"""Two analyses side by side (a good run and a bad one, before/after a firmware update): per
device, the versions and codecs that differ, each procedure's steps aligned with the first
divergence named, and the findings present in only one. Reads the typed model only.

Procedures and their steps, per remote device: ``link`` (connections: transport, who connected,
status, how they ended), ``pairing`` (method, outcome, reason), ``sdp`` (request → answer),
``avdtp`` (each signal with its answer and error; SET_CONFIGURATION with the codec), ``hfp``
(each AT command with its result), ``le`` (SMP and ATT requests with their answers).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from analyzer.model import Analysis

PROCEDURES = ("link", "pairing", "sdp", "avdtp", "hfp", "le")


@dataclass
class Step:
    text: str
    frame: int | None
    time_us: int | None = None  # from the capture's first frame (captures' clocks differ)


@dataclass
class Divergence:
    procedure: str
    index: int  # position of the first differing step (0-based)
    a: Step | None  # the step in A (None: A has no step here)
    b: Step | None
    a_steps: int
    b_steps: int


@dataclass
class DeviceDiff:
    address: str
    name: str | None
    only_in: str | None = None  # "a" / "b" when the device is in one capture only
    versions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    divergences: list[Divergence] = field(default_factory=list)


@dataclass
class CaptureDiff:
    a_path: str
    b_path: str
    devices: list[DeviceDiff]
    findings_only_a: list[tuple[str, str, str]]  # (id, severity, message)
    findings_only_b: list[tuple[str, str, str]]

    @property
    def first(self) -> tuple[DeviceDiff, Divergence] | None:
        """The divergence that happened first, by time since each capture's first frame."""
        best: tuple[float, DeviceDiff, Divergence] | None = None
        for d in self.devices:
            for dv in d.divergences:
                times = [s.time_us for s in (dv.a, dv.b) if s is not None and s.time_us is not None]
                t = float(min(times)) if times else float("inf")
                if best is None or t < best[0]:
                    best = (t, d, dv)
        return None if best is None else (best[1], best[2])


def _conn_ids(a: Analysis, addr: str) -> set[str]:
    return {c.id for c in a.connections if c.address == addr}


def steps(a: Analysis, addr: str) -> dict[str, list[Step]]:
    """Each procedure's steps for one remote device, in frame order."""
    ids = _conn_ids(a, addr)
    out: dict[str, list[Step]] = {p: [] for p in PROCEDURES}
    t0 = a.capture.first_time_us or 0

    def rel(t: int | None) -> int | None:
        return None if t is None else t - t0

    for c in a.connections:
        if c.address != addr or c.transport in ("sco", "esco"):
            continue
        who = c.initiator or "?"
        if not c.ok:
            text = f"{c.transport} connect by {who}: {c.status_name}"
            text += " (cancelled)" if c.cancelled else ""
        else:
            end = c.disconnect_reason_name or "still up"
            text = f"{c.transport} connected by {who}; ended: {end}"
        out["link"].append(Step(text, c.start_frame, rel(c.start_time_us)))
    for c in a.connections:
        if c.transport in ("sco", "esco") and (c.acl in ids or c.address == addr):
            link = c.sco.link_type_name if c.sco else c.transport
            out["link"].append(
                Step(f"{link} link: {c.status_name}", c.start_frame, rel(c.start_time_us))
            )
    for p in a.pairing:
        if p.address == addr:
            why = f" ({p.status_name})" if p.status_name and p.outcome != "success" else ""
            out["pairing"].append(
                Step(f"{p.transport} {p.method or 'method unknown'}: {p.outcome}{why}",
                     p.start_frame, rel(p.start_time_us))
            )  # fmt: skip
    for t in a.sdp:
        if t.address == addr:
            what = ", ".join(t.uuids) or "all"
            ans = t.error_name or t.response_pdu or "no answer"
            out["sdp"].append(
                Step(
                    f"{t.direction} {t.pdu} {what} → {ans}", t.request_frame, rel(t.request_time_us)
                )
            )
    for s in a.avdtp_signals:
        if s.connection in ids:
            ans = s.response or "no answer"
            if s.error_name:
                ans += f" {s.error_name}"
            codec = f" {s.details.codec}" if s.details.codec else ""
            text = f"{s.signal}{codec} ({s.direction}) → {ans}"
            out["avdtp"].append(Step(text, s.command_frame, rel(s.command_time_us)))
    for h in a.hfp:
        if h.address == addr or h.connection in ids:
            for at in h.at:
                if at.kind != "command":
                    continue
                cmd = at.text.split("=")[0] if "=?" not in at.text else at.text
                out["hfp"].append(
                    Step(f"{cmd} → {at.result or 'no answer'}", at.frame, rel(at.time_us))
                )
    for smp in a.smp.transactions:
        if smp.address == addr:
            ans = smp.reason_name or smp.response or "no answer"
            out["le"].append(
                Step(f"SMP {smp.request} → {smp.outcome} ({ans})", smp.frame, rel(smp.time_us))
            )
    for x in a.att.transactions:
        if x.address == addr:
            ans = x.error_name or x.response or "no answer"
            out["le"].append(
                Step(f"ATT {x.request} → {ans}", x.request_frame, rel(x.request_time_us))
            )
    for proc in PROCEDURES:
        out[proc].sort(key=lambda s: s.frame or 0)
    return out


def _first_divergence(proc: str, sa: list[Step], sb: list[Step]) -> Divergence | None:
    ta, tb = [s.text for s in sa], [s.text for s in sb]
    if ta == tb:
        return None
    for tag, i1, _i2, j1, _j2 in difflib.SequenceMatcher(
        None, ta, tb, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            continue
        # a step only one side took: the other side has none there
        step_a = sa[i1] if tag in ("replace", "delete") and i1 < len(sa) else None
        step_b = sb[j1] if tag in ("replace", "insert") and j1 < len(sb) else None
        return Divergence(proc, i1, step_a, step_b, len(sa), len(sb))
    return None


def _versions(a: Analysis, b: Analysis, addr: str) -> dict[str, tuple[str | None, str | None]]:
    out: dict[str, tuple[str | None, str | None]] = {}
    da, db = a.device(addr), b.device(addr)

    def ver(d: object) -> str | None:
        if d is None or getattr(d, "lmp_version", None) is None:
            return None
        sub = getattr(d, "lmp_subversion", None)
        return f"LMP {d.lmp_version}" + (f" / {sub:#06x}" if isinstance(sub, int) else "")  # type: ignore[attr-defined]

    def codecs(x: Analysis) -> str | None:
        ids = _conn_ids(x, addr)
        cs = [s.codec for s in x.avdtp_streams if s.connection in ids and s.codec]
        hf = [h.codec_name for h in x.hfp if h.connection in ids and h.codec_name]
        got = sorted(set(cs)) + [f"HFP {c}" for c in sorted(set(hf))]
        return ", ".join(got) or None

    pairs = {
        "name": (da.name if da else None, db.name if db else None),
        "firmware": (ver(da), ver(db)),
        "codecs": (codecs(a), codecs(b)),
    }
    for k, (va, vb) in pairs.items():
        if va != vb:
            out[k] = (va, vb)
    return out


def _remotes(a: Analysis) -> dict[str, str | None]:
    local = a.controller.address
    return {
        d.address: d.name
        for d in a.devices
        if d.role == "remote" and d.address not in (local, "00:00:00:00:00:00")
    }


def diff(a: Analysis, b: Analysis) -> CaptureDiff:
    ra, rb = _remotes(a), _remotes(b)
    devices: list[DeviceDiff] = []
    for addr in list(dict.fromkeys([*ra, *rb])):
        name = ra.get(addr) or rb.get(addr)
        if addr not in rb or addr not in ra:
            only = "a" if addr not in rb else "b"
            if not any(steps(a if only == "a" else b, addr).values()):
                continue  # merely heard (an advertiser): not a device of the run
            devices.append(DeviceDiff(addr, name, only_in=only))
            continue
        dd = DeviceDiff(addr, name, versions=_versions(a, b, addr))
        sa, sb = steps(a, addr), steps(b, addr)
        for p in PROCEDURES:
            dv = _first_divergence(p, sa[p], sb[p])
            if dv is not None:
                dd.divergences.append(dv)
        if dd.versions or dd.divergences:
            devices.append(dd)
    key_a = {(f.id, f.address): f for f in a.findings}
    key_b = {(f.id, f.address): f for f in b.findings}
    only_a = [(f.id, f.severity, f.message) for k, f in key_a.items() if k not in key_b]
    only_b = [(f.id, f.severity, f.message) for k, f in key_b.items() if k not in key_a]
    # devices with a divergence first, in the order their first divergent step happened
    devices.sort(key=lambda d: (not d.divergences, d.only_in is not None))
    return CaptureDiff(a.capture.path, b.capture.path, devices, only_a, only_b)


def render(d: CaptureDiff, markdown: bool = False) -> str:
    """The comparison as plain text (or Markdown for a ticket)."""
    h = "## " if markdown else ""
    bullet = "- " if markdown else "  "
    code = "`" if markdown else ""
    lines = [f"{h}Comparing A = {d.a_path} with B = {d.b_path}", ""]
    first = d.first
    if first is not None:
        dev, dv = first
        lines.append(
            f"First divergence: {dev.name or dev.address} ({dev.address}), {dv.procedure} step "
            f"{dv.index + 1}: A {_step(dv.a, code)}; B {_step(dv.b, code)}"
        )
    else:
        lines.append("No procedure step differs.")
    lines.append("")
    for dev in d.devices:
        lines.append(f"{h}{dev.name or 'unnamed'} ({dev.address})")
        if dev.only_in:
            lines.append(f"{bullet}only in {dev.only_in.upper()}")
        for k, (va, vb) in dev.versions.items():
            lines.append(f"{bullet}{k}: A {va or '—'} → B {vb or '—'}")
        for dv in dev.divergences:
            lines.append(
                f"{bullet}{dv.procedure}: differs at step {dv.index + 1} of {dv.a_steps} (A) / "
                f"{dv.b_steps} (B): A {_step(dv.a, code)}; B {_step(dv.b, code)}"
            )
        lines.append("")
    for label, items in (("A", d.findings_only_a), ("B", d.findings_only_b)):
        lines.append(f"{h}Findings only in {label}: {len(items)}")
        for fid, sev, msg in items:
            lines.append(f"{bullet}{code}{fid}{code} ({sev}): {msg}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _step(s: Step | None, code: str) -> str:
    if s is None:
        return "has no such step"
    at = f", {s.time_us / 1e6:.1f} s in" if s.time_us is not None else ""
    return f"{code}{s.text}{code} (frame {s.frame}{at})"


def to_json(d: CaptureDiff) -> dict[str, object]:
    def step(s: Step | None) -> dict[str, object] | None:
        return None if s is None else {"text": s.text, "frame": s.frame}

    first = d.first
    return {
        "a": d.a_path,
        "b": d.b_path,
        "first_divergence": None if first is None else {
            "address": first[0].address, "procedure": first[1].procedure,
            "step": first[1].index + 1, "a": step(first[1].a), "b": step(first[1].b),
        },
        "devices": [
            {
                "address": dev.address, "name": dev.name, "only_in": dev.only_in,
                "differs": {k: {"a": va, "b": vb} for k, (va, vb) in dev.versions.items()},
                "divergences": [
                    {"procedure": dv.procedure, "step": dv.index + 1, "a": step(dv.a),
                     "b": step(dv.b), "a_steps": dv.a_steps, "b_steps": dv.b_steps}
                    for dv in dev.divergences
                ],
            }
            for dev in d.devices
        ],
        "findings_only_a": [_finding(f) for f in d.findings_only_a],
        "findings_only_b": [_finding(f) for f in d.findings_only_b],
    }  # fmt: skip


def _finding(f: tuple[str, str, str]) -> dict[str, object]:
    return {"id": f[0], "severity": f[1], "message": f[2]}
