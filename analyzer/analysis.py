"""The one result object: a capture, what was rebuilt from it, and the findings.

``analyzer.analyze(path)`` → :class:`Analysis`; its tables are polars DataFrames (``table(name)``)
and ``to_json()`` gives the stable JSON document described in docs/json-schema.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analyzer.capture import Capture
from analyzer.rules.base import Finding, RuleConfig, run_rules
from analyzer.sessions.model import (
    Anomaly,
    AvdtpSignal,
    AvdtpStream,
    Connection,
    Device,
    L2capChannel,
    PairingAttempt,
    SdpTransaction,
    StreamEndpoint,
    TimelineEvent,
    to_jsonable,
)

SCHEMA = "btanalyze/analysis/1"

TABLES = (
    "devices",
    "connections",
    "l2cap_channels",
    "pairing",
    "sdp",
    "avdtp_signals",
    "avdtp_streams",
    "avdtp_endpoints",
    "hfp",
    "advertisers",
    "timeline",
    "findings",
    "anomalies",
)


@dataclass
class Analysis:
    capture: Capture
    devices: list[Device] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    l2cap_channels: list[L2capChannel] = field(default_factory=list)
    pairing: list[PairingAttempt] = field(default_factory=list)
    sdp: list[SdpTransaction] = field(default_factory=list)
    avdtp_signals: list[AvdtpSignal] = field(default_factory=list)
    avdtp_streams: list[AvdtpStream] = field(default_factory=list)
    avdtp_endpoints: list[StreamEndpoint] = field(default_factory=list)
    hfp: list[Any] = field(default_factory=list)
    advertisers: list[Any] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # per-protocol extras (rfcomm, att, ...)

    # -- lookups used by rules and reports -------------------------------------------------------
    def connection(self, conn_id: str | None) -> Connection | None:
        for c in self.connections:
            if c.id == conn_id:
                return c
        return None

    def device(self, address: str | None) -> Device | None:
        for d in self.devices:
            if d.address == address:
                return d
        return None

    def device_label(self, address: str | None) -> str:
        d = self.device(address)
        if address is None:
            return "unknown device"
        return f"{d.name} ({address})" if d and d.name else address

    # -- output ------------------------------------------------------------------------------
    def table(self, name: str) -> pl.DataFrame:
        """One of :data:`TABLES` as a polars DataFrame (nested values as JSON-like structs)."""
        if name not in TABLES:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        rows = to_jsonable(getattr(self, name))
        if not rows:
            return pl.DataFrame()
        return pl.DataFrame(rows, infer_schema_length=None, strict=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "capture": self.capture.summary(),
            "devices": to_jsonable(self.devices),
            "connections": to_jsonable(self.connections),
            "l2cap_channels": to_jsonable(self.l2cap_channels),
            "pairing": to_jsonable(self.pairing),
            "sdp": to_jsonable(self.sdp),
            "avdtp": {
                "signals": to_jsonable(self.avdtp_signals),
                "streams": to_jsonable(self.avdtp_streams),
                "endpoints": to_jsonable(self.avdtp_endpoints),
            },
            "hfp": to_jsonable(self.hfp),
            "advertisers": to_jsonable(self.advertisers),
            "timeline": to_jsonable(self.timeline),
            "findings": to_jsonable(self.findings),
            "anomalies": to_jsonable(self.anomalies),
            **{k: to_jsonable(v) for k, v in self.extra.items()},
        }


def analyze_capture(
    cap: Capture,
    config: RuleConfig | None = None,
    *,
    device: str | None = None,
    time_from_us: int | None = None,
    time_to_us: int | None = None,
) -> Analysis:
    """Rebuild sessions from a capture, then run the rules."""
    from analyzer.sessions.build import rebuild

    analysis = rebuild(cap, device=device, time_from_us=time_from_us, time_to_us=time_to_us)
    analysis.findings = run_rules(analysis, config)
    return analysis


def analyze(path: str | os.PathLike[str], config: RuleConfig | None = None, **kw: Any) -> Analysis:
    """Read and analyse a capture file: ``analyzer.analyze("btsnoop_hci.log").to_json()``."""
    from analyzer.readers import load

    return analyze_capture(load(path, log=kw.pop("log", None)), config, **kw)
