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


__all__ = ["narrow_to_device"]
