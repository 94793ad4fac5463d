"""Narrowing a finished analysis to one remote device (``--device``): a pure function over the
model that records what it kept in :attr:`Analysis.scope`, so rules read the scope instead of
guessing it."""

from __future__ import annotations

from dataclasses import replace

from analyzer.model.analysis import Analysis, AvdtpSummary
from analyzer.model.le import SmpSummary


def narrow_to_device(a: Analysis, address: str) -> Analysis:
    """A copy of ``a`` with only what concerns ``address``: its connections (and the SCO links
    riding on them) and everything on those connections, its pairing attempts, advertising and
    timeline lanes; the local device, HCI commands, inquiry results and the controller stay (the
    controller's story; rules that tell it read ``scope``). ``a`` is not changed."""
    keep = {c.id for c in a.connections if c.address == address}
    conns = [c for c in a.connections if c.id in keep or c.acl in keep]
    keep |= {c.id for c in conns}
    return replace(
        a,
        scope=replace(a.scope, device=address),
        connections=conns,
        devices=[d for d in a.devices if d.address == address or d.role == "local"],
        pairing=[p for p in a.pairing if p.address == address],
        l2cap_channels=[c for c in a.l2cap_channels if c.connection in keep],
        l2cap_signals=[c for c in a.l2cap_signals if c.connection in keep],
        sdp=[s for s in a.sdp if s.connection in keep],
        avdtp=AvdtpSummary(
            signals=[s for s in a.avdtp.signals if s.connection in keep],
            streams=[s for s in a.avdtp.streams if s.connection in keep],
            endpoints=[s for s in a.avdtp.endpoints if s.connection in keep],
        ),
        rfcomm=[r for r in a.rfcomm if r.connection in keep],
        hfp=[h for h in a.hfp if h.connection in keep],
        ll_connections=[x for x in a.ll_connections if x.connection in keep],
        smp=SmpSummary(
            transactions=[t for t in a.smp.transactions if t.connection in keep],
            pdus=[p for p in a.smp.pdus if p.connection in keep],
        ),
        att=replace(
            a.att,
            transactions=[t for t in a.att.transactions if t.connection in keep],
            notifications=[n for n in a.att.notifications if n.connection in keep],
            services={k: v for k, v in a.att.services.items() if k in keep},
        ),
        timeline=[e for e in a.timeline if e.lane in keep or e.lane == address],
        advertisers=[x for x in a.advertisers if x.address == address],
        findings=[f for f in a.findings if f.address in (address, None) or f.connection in keep],
    )


def narrow_to_window(a: Analysis, time_from_us: int | None, time_to_us: int | None) -> Analysis:
    """A copy of ``a`` (analysed whole, so devices keep their names and no slice edge looks
    like a truncated capture) showing what happened in [from, to]: the connections that overlap
    it, the timeline events and findings inside it. ``a`` is not changed."""
    lo = time_from_us if time_from_us is not None else -(1 << 62)
    hi = time_to_us if time_to_us is not None else 1 << 62

    def inside(t: int | None) -> bool:
        return t is not None and lo <= t <= hi

    conns = [
        c for c in a.connections
        if (c.start_time_us is None or c.start_time_us <= hi)
        and (c.end_time_us is None or c.end_time_us >= lo)
    ]  # fmt: skip
    return replace(
        a,
        scope=replace(a.scope, time_from_us=time_from_us, time_to_us=time_to_us),
        connections=conns,
        pairing=[p for p in a.pairing if inside(p.start_time_us)],
        timeline=[e for e in a.timeline if inside(e.time_us)],
        findings=[f for f in a.findings if f.time_us is None or inside(f.time_us)],
    )


def resolve_device(a: Analysis, query: str) -> tuple[str | None, list[str]]:
    """The remote device ``query`` names (an address in any case, an address prefix of at least
    two octets naming one device, or a device name, exactly or as the only partial match), and
    the devices to suggest when it names none (or a prefix names several)."""
    q = query.strip()
    remotes = [d for d in a.devices if d.role == "remote"]
    known = {d.address.upper(): d.address for d in remotes}
    known.update({x.address.upper(): x.address for x in a.advertisers})
    if q.upper() in known:
        return known[q.upper()], []
    # an address prefix ("60:55:56", "6055") naming one device
    hexq = q.upper().replace(":", "").replace("-", "")
    if len(hexq) >= 4 and all(c in "0123456789ABCDEF" for c in hexq):
        pre = sorted({v for k, v in known.items() if k.replace(":", "").startswith(hexq)})
        if len(pre) == 1:
            return pre[0], []
        if pre:
            return None, pre[:10]
    named = [d for d in remotes if d.name and d.name.lower() == q.lower()]
    if not named:
        named = [d for d in remotes if d.name and q.lower() in d.name.lower()]
    if len(named) == 1:
        return named[0].address, []
    import difflib

    labels = [f"{d.address} ({d.name})" if d.name else d.address for d in remotes]
    close = difflib.get_close_matches(q.upper(), list(known), n=3, cutoff=0.6)
    close += [f"{d.address} ({d.name})" for d in named]
    return None, close or labels[:10]


__all__ = ["narrow_to_device", "narrow_to_window", "resolve_device"]
