"""The result of an analysis: every table a list of typed records, JSON both ways, fixed polars
schemas, Parquet per table. It holds no capture bytes, so it pickles to a worker and caches."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import field
from pathlib import Path
from typing import TypeVar, cast, get_args

import polars as pl

from analyzer.model.audio import (
    AvdtpSignal,
    AvdtpStream,
    HfpSession,
    RfcommDlc,
    SdpTransaction,
    StreamEndpoint,
)
from analyzer.model.base import (
    JsonValue,
    ModelError,
    field_types,
    frame_of,
    from_jsonable,
    record,
    schema_of,
    to_jsonable,
)
from analyzer.model.capture import CaptureSummary, Scope
from analyzer.model.findings import Anomaly, Finding, Incident, Suppressed, TimelineEvent
from analyzer.model.le import Advertiser, AdvertisingSummary, AttSummary, SmpSummary
from analyzer.model.links import (
    Connection,
    ControllerInfo,
    Device,
    DiscoveredDevice,
    HciTransaction,
    L2capChannel,
    L2capSignal,
    LlConnection,
    PairingAttempt,
)

#: link types of air (sniffer) captures: there is no host, the central speaks first
AIR_LINK_TYPES = frozenset({251, 256, 272, 255, 192, 147})
T = TypeVar("T")

#: the JSON document's version; 2 = the typed model (schema 1 keys kept, see docs/json-schema.md)
SCHEMA = "btanalyze/analysis/2"
ACCEPTED_SCHEMAS = (SCHEMA,)


@record
class AvdtpSummary:
    signals: list[AvdtpSignal] = field(default_factory=list)
    streams: list[AvdtpStream] = field(default_factory=list)
    endpoints: list[StreamEndpoint] = field(default_factory=list)


@record
class Analysis:
    """What was rebuilt from one capture, and the findings."""

    capture: CaptureSummary
    scope: Scope = field(default_factory=Scope)
    controller: ControllerInfo = field(default_factory=ControllerInfo)
    controller_debug_frames: int = 0  # vendor debug-log frames on the controller's own handle
    devices: list[Device] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    hci_commands: list[HciTransaction] = field(default_factory=list)
    discovered: list[DiscoveredDevice] = field(default_factory=list)
    l2cap_channels: list[L2capChannel] = field(default_factory=list)
    l2cap_signals: list[L2capSignal] = field(default_factory=list)
    pairing: list[PairingAttempt] = field(default_factory=list)
    sdp: list[SdpTransaction] = field(default_factory=list)
    avdtp: AvdtpSummary = field(default_factory=AvdtpSummary)
    rfcomm: list[RfcommDlc] = field(default_factory=list)
    hfp: list[HfpSession] = field(default_factory=list)
    ll_connections: list[LlConnection] = field(default_factory=list)
    smp: SmpSummary = field(default_factory=SmpSummary)
    att: AttSummary = field(default_factory=AttSummary)
    advertisers: list[Advertiser] = field(default_factory=list)
    advertising: AdvertisingSummary = field(default_factory=AdvertisingSummary)
    timeline: list[TimelineEvent] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)

    # -- AVDTP tables under their schema-1 names ------------------------------------------------
    @property
    def avdtp_signals(self) -> list[AvdtpSignal]:
        return self.avdtp.signals

    @property
    def avdtp_streams(self) -> list[AvdtpStream]:
        return self.avdtp.streams

    @property
    def avdtp_endpoints(self) -> list[StreamEndpoint]:
        return self.avdtp.endpoints

    # -- lookups used by rules and reports -------------------------------------------------------
    @contextmanager
    def frozen(self) -> Iterator[None]:
        """While nothing changes the analysis's tables (the rules read it), look-ups by id and
        address are dict look-ups and :func:`memo` keeps what it built: rules that ask about
        each of thousands of connections stay linear (issue 18 §2)."""
        if id(self) in _FROZEN:
            yield
            return
        _FROZEN[id(self)] = _Frozen(self)
        try:
            yield
        finally:
            del _FROZEN[id(self)]

    def connection(self, conn_id: str | None) -> Connection | None:
        fz = _frozen(self)
        if fz is not None:
            return fz.get("connections", lambda: _first_by(self.connections, "id")).get(conn_id)
        for c in self.connections:
            if c.id == conn_id:
                return c
        return None

    def device(self, address: str | None) -> Device | None:
        fz = _frozen(self)
        if fz is not None:
            return fz.get("devices", lambda: _first_by(self.devices, "address")).get(address)
        for d in self.devices:
            if d.address == address:
                return d
        return None

    def frame_ref(self, frame: int) -> str:
        """A frame as the user finds it in Wireshark: ``#148``, or ``btsnoop_hci.log.last #148``
        when the capture joins several files (each file numbers its own frames)."""
        src = self.capture.extra.sources
        if len(src) > 1:
            for s in src:
                if s.first_frame <= frame < s.first_frame + s.frames:
                    return f"{s.name} #{frame - s.first_frame + 1}"
        return f"#{frame}"

    def device_label(self, address: str | None) -> str:
        if address is None:
            return "unknown device"
        d = self.device(address)
        if d and d.name:
            return f"{d.name} ({address})"
        fz = _frozen(self)
        if fz is not None:
            named = [x for x in self.advertisers if x.name]
            adv = fz.get("named_advertisers", lambda: _first_by(named, "address")).get(address)
        else:
            adv = next((x for x in self.advertisers if x.address == address and x.name), None)
        return f"{adv.name} ({address})" if adv is not None else address

    @property
    def local_device(self) -> Device | None:
        fz = _frozen(self)
        if fz is not None:
            return fz.get("local_device", lambda: _local_device(self.devices))
        return _local_device(self.devices)

    @property
    def host(self) -> str:
        """How finding texts name the capturing side, from what the capture shows: "the phone"
        for Android logs (bugreports, btsnooz), "the BlueZ host" for btmon logs, "the Apple
        host" for PacketLogger, "the central" on the air, else "the host" — with its local name
        when the log has one (e.g. "the phone (Pixel 7)")."""
        c = self.capture
        if c.extra.container == "bugreport" or c.format == "btsnooz":
            kind = "the phone"
        elif c.link_type == 2001:
            kind = "the BlueZ host"
        elif c.format == "packetlogger":
            kind = "the Apple host"
        elif c.link_type in AIR_LINK_TYPES:
            kind = "the central"
        else:
            kind = "the host"
        name = self.controller.name or (self.local_device.name if self.local_device else None)
        return f"{kind} ({name})" if name else kind

    @property
    def Host(self) -> str:
        h = self.host
        return h[:1].upper() + h[1:]

    # -- tables ----------------------------------------------------------------------------------
    def table(self, name: str) -> pl.DataFrame:
        """One of :data:`TABLES` as a polars DataFrame with that table's fixed schema."""
        if name not in TABLE_PATHS:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        return frame_of(TABLE_RECORDS[name], self.rows(name))

    @staticmethod
    def table_schema(name: str) -> pl.Schema:
        """The fixed polars schema of one of :data:`TABLES` (without ``capture_id``)."""
        if name not in TABLE_PATHS:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        return schema_of(TABLE_RECORDS[name])

    def rows(self, name: str) -> list[object]:
        """The records of one table."""
        obj: object = self
        for part in TABLE_PATHS[name]:
            obj = getattr(obj, part)
        return list(obj) if isinstance(obj, list) else [obj]

    def to_parquet(self, directory: str | os.PathLike[str], capture_id: str) -> list[Path]:
        """One Parquet file per table (``<table>.parquet``), each with a leading ``capture_id``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLES:
            df = self.table(name)
            df = df.select(pl.lit(capture_id, dtype=pl.Utf8).alias("capture_id"), pl.all())
            path = out / f"{name}.parquet"
            df.write_parquet(path)
            written.append(path)
        return written

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, JsonValue]:
        doc = to_jsonable(self)
        assert isinstance(doc, dict)
        return {"schema": SCHEMA, **doc}

    @classmethod
    def from_json(cls, doc: dict[str, JsonValue] | str | bytes) -> Analysis:
        """The analysis that :meth:`to_json` gave (a dict, or its JSON text)."""
        data = json.loads(doc) if isinstance(doc, str | bytes) else doc
        if not isinstance(data, dict):
            raise ModelError("an analysis document is a JSON object")
        schema = data.get("schema")
        if schema not in ACCEPTED_SCHEMAS:
            raise ModelError(f"unsupported analysis schema {schema!r} (this is {SCHEMA})")
        body = {k: v for k, v in data.items() if k != "schema"}
        return from_jsonable(cls, body)


class _Frozen:
    """What :meth:`Analysis.frozen` keeps: lazily built look-up tables, by name."""

    def __init__(self, owner: Analysis) -> None:
        self.owner = owner
        self.built: dict[str, object] = {}

    def get(self, name: str, build: Callable[[], T]) -> T:
        if name not in self.built:
            self.built[name] = build()
        return cast(T, self.built[name])


_FROZEN: dict[int, _Frozen] = {}


def _frozen(a: Analysis) -> _Frozen | None:
    fz = _FROZEN.get(id(a))
    return fz if fz is not None and fz.owner is a else None


def _local_device(devices: list[Device]) -> Device | None:
    for d in devices:
        if d.role == "local":
            return d
    return None


def _first_by(items: list[T], attr: str) -> dict[object, T]:
    out: dict[object, T] = {}
    for x in items:
        out.setdefault(getattr(x, attr), x)
    return out


def memo(a: Analysis, name: str, build: Callable[[], T]) -> T:
    """``build()`` — once per :meth:`Analysis.frozen` scope (a look-up table several rules or
    many calls share, e.g. channels by connection); each call outside one."""
    fz = _frozen(a)
    return build() if fz is None else fz.get(name, build)


#: table name → attribute path on :class:`Analysis`
TABLE_PATHS: dict[str, tuple[str, ...]] = {
    "capture": ("capture",),
    "devices": ("devices",),
    "connections": ("connections",),
    "hci_commands": ("hci_commands",),
    "controller_resets": ("controller", "resets"),
    "hardware_errors": ("controller", "hardware_errors"),
    "discovered": ("discovered",),
    "l2cap_channels": ("l2cap_channels",),
    "l2cap_signals": ("l2cap_signals",),
    "pairing": ("pairing",),
    "sdp": ("sdp",),
    "avdtp_signals": ("avdtp", "signals"),
    "avdtp_streams": ("avdtp", "streams"),
    "avdtp_endpoints": ("avdtp", "endpoints"),
    "rfcomm": ("rfcomm",),
    "hfp": ("hfp",),
    "ll_connections": ("ll_connections",),
    "smp_transactions": ("smp", "transactions"),
    "smp_pdus": ("smp", "pdus"),
    "att_transactions": ("att", "transactions"),
    "att_notifications": ("att", "notifications"),
    "advertisers": ("advertisers",),
    "scan_parameters": ("advertising", "scan_parameters"),
    "scan_sessions": ("advertising", "scan_sessions"),
    "timeline": ("timeline",),
    "findings": ("findings",),
    "incidents": ("incidents",),
    "suppressed": ("suppressed",),
    "anomalies": ("anomalies",),
}
TABLES: tuple[str, ...] = tuple(TABLE_PATHS)


def _record_of(path: tuple[str, ...]) -> type:
    cls: type = Analysis
    for part in path:
        tp = dict(field_types(cls))[part]
        args = get_args(tp)
        cls = args[0] if args else tp  # type: ignore[assignment]
    return cls


#: table name → its record class
TABLE_RECORDS: dict[str, type] = {name: _record_of(p) for name, p in TABLE_PATHS.items()}
