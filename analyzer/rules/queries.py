"""Facts several rules need, read from the typed model (never bytes, never another rule):
request/response exchanges, what ran on a link when it dropped, firmware changes, who ended a
link."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from analyzer.model import (
    Advertiser,
    Analysis,
    AvdtpStream,
    Connection,
    HciTransaction,
    HfpSession,
    L2capChannel,
    L2capSignal,
    LlConnection,
    PairingAttempt,
    RfcommDlc,
    StreamState,
)
from analyzer.model.analysis import memo

X = TypeVar("X")


def group_by(items: Iterable[X], key: Callable[[X], Hashable]) -> dict[Hashable, list[X]]:
    """``items`` by ``key``, each group in the items' order."""
    out: dict[Hashable, list[X]] = {}
    for x in items:
        out.setdefault(key(x), []).append(x)
    return out


def by_connection(a: Analysis, table: str) -> dict[Hashable, list[X]]:
    """The rows of one of the analysis's per-connection lists (``l2cap_channels``,
    ``avdtp_streams``, ``hfp``, ``l2cap_signals``, ``pairing``, ...) by connection id, built
    once while the rules run (:meth:`Analysis.frozen`) — a rule asking about each connection
    in turn stays linear."""
    return memo(a, f"by_connection:{table}", lambda: group_by(getattr(a, table), _conn_of))


def _conn_of(x: object) -> Hashable:
    conn: Hashable = getattr(x, "connection", None)
    return conn


#: HCI commands whose completion comes by design after a user-chosen duration or never on its
#: own (Inquiry runs Inquiry_Length × 1.28 s; LE Create Connection waits for the advertiser).
OPEN_ENDED_COMPLETIONS = frozenset({0x0401, 0x200D, 0x2043})
#: SMP and ATT transactions time out after 30 s (Core Vol 3 Part H §3.4, Part F §3.3.3).
PROTOCOL_TIMER_S = {"smp": 30.0, "att": 30.0}


@dataclass
class Exchange:
    layer: str  # hci / hci_completion / l2cap / sdp / avdtp / at / smp / att
    what: str  # "SDP ServiceSearchAttributeRequest", "AVDTP SET_CONFIGURATION", ...
    request_frame: int
    request_time_us: int
    response_frame: int | None
    response_time_us: int | None
    silent: str  # who owed the answer: "controller", "remote device", "local host"
    connection: str | None = None
    address: str | None = None
    deadline_s: float | None = None  # a protocol's own deadline, else the rule's
    floor_s: float | None = None  # the rule's deadline, but never shorter than this

    def deadline(self, rule_deadline_s: float) -> float:
        return self.deadline_s or max(rule_deadline_s, self.floor_s or 0.0)

    opcode: int | None = None  # HCI exchanges: the command
    completion_status: int | None = None  # HCI completion exchanges: the event's status


def _silent(direction: str) -> str:
    return "remote device" if direction == "sent" else "local host"


#: pairing methods with a person in the loop (confirming, typing a passkey or PIN)
USER_METHODS = frozenset({"numeric_comparison", "passkey", "legacy_pin", "ssp_user_confirmation"})
#: a page is bounded by the Page Timeout the host set; allow this much for the LMP set-up after it
PAGE_SETUP_MARGIN_S = 1.0


def _user_paced(a: Analysis, tx: HciTransaction) -> bool:
    """Did a person take part in this Authentication Requested (a pairing with a user step
    between the command and its completion)?"""
    end = tx.complete_frame if tx.complete_frame is not None else 1 << 62
    pairing: list[PairingAttempt] = by_connection(a, "pairing").get(tx.connection, [])
    return any(
        p.method in USER_METHODS and p.frames and p.frames[0] <= end and p.frames[-1] >= tx.frame
        for p in pairing
    )


def exchanges(a: Analysis) -> Iterator[Exchange]:
    page_timeout = a.controller.page_timeout_s
    for tx in a.hci_commands:
        if tx.waits_on_user or tx.vendor or not 0x01 <= tx.opcode >> 10 <= 0x08:
            # a person's pace; vendor commands answer in vendor ways; OGFs outside the Core
            # spec's 0x01-0x08 (e.g. BTstack's daemon commands in PacketLogger logs) are not HCI
            continue
        yield Exchange(
            "hci",
            f"HCI {tx.name}",
            tx.frame,
            tx.time_us,
            tx.status_frame,
            tx.status_time_us,
            "controller",
            tx.connection,
            tx.address,
            opcode=tx.opcode,
        )
        if (
            tx.expects_completion
            and tx.opcode not in OPEN_ENDED_COMPLETIONS
            and tx.status in (None, 0)
            and tx.status_frame is not None
            and not (tx.opcode == 0x0411 and _user_paced(a, tx))
        ):
            deadline = None
            if tx.opcode == 0x0405 and page_timeout:
                deadline = page_timeout + PAGE_SETUP_MARGIN_S
            yield Exchange(
                "hci_completion",
                f"HCI {tx.name} (completion event)",
                tx.frame,
                tx.time_us,
                tx.complete_frame,
                tx.complete_time_us,
                "remote device" if tx.address or tx.connection else "controller",
                tx.connection,
                tx.address,
                floor_s=deadline,
                opcode=tx.opcode,
                completion_status=tx.complete_status,
            )
    for s in a.l2cap_signals:
        if not s.is_request or s.suspect:
            continue
        yield Exchange(
            "l2cap",
            f"L2CAP {s.name}",
            s.frame,
            s.time_us,
            s.response_frame,
            s.response_time_us,
            _silent(s.direction),
            s.connection,
            s.address,
        )
    for t in a.sdp:
        # a continued transfer is timed hop by hop: the last request against the last response
        yield Exchange(
            "sdp",
            f"SDP {t.pdu}",
            t.last_request_frame or t.request_frame,
            t.last_request_time_us or t.request_time_us,
            t.response_frame,
            t.response_time_us,
            _silent(t.direction),
            t.connection,
            t.address,
        )
    for sg in a.avdtp_signals:
        if sg.command_frame is None or sg.command_time_us is None:
            continue
        yield Exchange(
            "avdtp",
            f"AVDTP {sg.signal}",
            sg.command_frame,
            sg.command_time_us,
            sg.response_frame,
            sg.response_time_us,
            _silent(sg.direction),
            sg.connection,
            _conn_addr(a, sg.connection),
        )
    for h in a.hfp:
        for at in h.at:
            if at.kind != "command":
                continue
            yield Exchange(
                "at",
                f"AT command {at.text}",
                at.frame,
                at.time_us,
                at.result_frame,
                at.result_time_us,
                _silent(at.direction),
                h.connection,
                h.address,
            )
    for sm in a.smp.transactions:
        # a Security Request may be answered by encryption with a stored key rather than an
        # SMP PDU (Vol 3 Part H §2.4.6): only a Pairing Request is owed an SMP answer
        if sm.request != "Pairing Request":
            continue
        yield Exchange(
            "smp",
            f"SMP {sm.request}",
            sm.frame,
            sm.time_us,
            sm.response_frame,
            sm.response_time_us,
            _silent(sm.direction),
            sm.connection,
            sm.address,
            deadline_s=PROTOCOL_TIMER_S["smp"],
        )
    for at_tx in a.att.transactions:
        yield Exchange(
            "att",
            f"ATT {at_tx.request}",
            at_tx.request_frame,
            at_tx.request_time_us,
            at_tx.response_frame,
            at_tx.response_time_us,
            _silent(at_tx.direction),
            at_tx.connection,
            at_tx.address,
            deadline_s=PROTOCOL_TIMER_S["att"],
        )


def _conn_addr(a: Analysis, conn_id: str | None) -> str | None:
    c = a.connection(conn_id)
    return c.address if c else None


LOSS_REASONS: dict[int, str] = {
    0x08: "nothing was heard from the other side for the whole link supervision timeout "
    "(out of range, interference, or the device powered off or crashed)",
    0x22: "the other side stopped answering link-manager / link-layer procedures",
    0x28: "a link-layer procedure's instant passed before the peer acknowledged it, so the "
    "link had to be dropped",
    0x3D: "a packet failed its integrity check (MIC) on the encrypted link",
}


def stream_state_at(states: list[StreamState], t_us: int) -> str | None:
    """The AVDTP stream state in force at ``t_us`` (from a stream's ``states``)."""
    cur = None
    for s in states:
        if s.time_us <= t_us:
            cur = s.state
    return cur


def running_at(a: Analysis, c: Connection, t_us: int) -> tuple[list[str], list[int]]:
    """What the link carried when it went down: streams, calls, SCO links (with frames)."""
    what: list[str] = []
    frames: list[int] = []
    streams: list[AvdtpStream] = by_connection(a, "avdtp_streams").get(c.id, [])
    hfps: list[HfpSession] = by_connection(a, "hfp").get(c.id, [])
    for st in streams:
        if stream_state_at(st.states, t_us) == "streaming":
            what.append(f"A2DP ({st.codec or 'codec unknown'}) was streaming")
            last = [s for s in st.states if s.state == "streaming"]
            if last:
                frames.append(last[-1].frame)
    for h in hfps:
        for call in getattr(h, "calls", []) or []:
            start = getattr(call, "start_time_us", None)
            end = getattr(call, "end_time_us", None)
            if start is not None and start <= t_us and (end is None or end >= t_us):
                what.append(
                    f"a{'n ' + call.direction if call.direction != 'unknown' else ''} "
                    "call was in progress"
                )
                frames.append(call.start_frame)
    sco = memo(a, "sco_by_acl", lambda: _sco_links(a))
    for _, s in sorted(sco.get(("acl", c.id), []) + sco.get(("addr", c.address), [])):
        if (s.start_time_us or 0) <= t_us and (s.end_time_us is None or s.end_time_us >= t_us):
            what.append(f"an {s.transport.upper()} audio link was up")
            if s.start_frame:
                frames.append(s.start_frame)
    return what, frames


def _sco_links(a: Analysis) -> dict[Hashable, list[tuple[int, Connection]]]:
    """Established SCO/eSCO links (with their place in the connections) by their ACL (or, when
    unknown, by their peer's address)."""
    sco = [
        (i, s)
        for i, s in enumerate(a.connections)
        if s.transport in ("sco", "esco") and s.status == 0
    ]
    return group_by(
        sco, lambda x: ("acl", x[1].acl) if x[1].acl is not None else ("addr", x[1].address)
    )


FIELD_LABELS = {
    "lmp_subversion": "LMP subversion",
    "lmp_version": "LMP version",
    "version": "Device ID version",
    "product_id": "Device ID product",
}


@dataclass(slots=True)
class FirmwareChange:
    """A version a remote reports that differs between two of its connections."""

    address: str
    field: str
    label: str
    before: int
    after: int
    frames: tuple[int, int]  # where the old and the new value were read
    time_us: int
    source: str

    def describe(self) -> str:
        return f"{self.label} {self.before:#x} → {self.after:#x}"


def firmware_changes(a: Analysis) -> list[FirmwareChange]:
    """Changes of LMP subversion/version and Device ID version/product between connections."""
    out: list[FirmwareChange] = []
    for d in a.devices:
        if d.role == "local":
            continue
        lmp = [(v.connection, v.frame, v.time_us, {"lmp_subversion": v.lmp_subversion,
                "lmp_version": v.lmp_version}) for v in d.versions_seen]  # fmt: skip
        did = [(v.connection, v.frame, v.time_us, {"version": v.version,
                "product_id": v.product_id}) for v in d.device_ids_seen]  # fmt: skip
        for series, source in (
            (lmp, "Read Remote Version Information"),
            (did, "SDP Device ID (PnP Information)"),
        ):
            for prev, cur in itertools.pairwise(series):
                if prev[0] == cur[0]:
                    continue
                for f, before in prev[3].items():
                    after = cur[3][f]
                    if before is not None and after is not None and before != after:
                        out.append(
                            FirmwareChange(d.address, f, FIELD_LABELS[f], before, after,
                                           (prev[1], cur[1]), cur[2], source)
                        )  # fmt: skip
    return out


#: Vol 1 Part F: the remote's host chose to end the link
REMOTE_REASONS = frozenset({0x13, 0x14, 0x15})


def own_disconnect(a: Analysis, c: Connection) -> int | None:
    """Frame of an HCI Disconnect (0x0406) our host sent for this connection, if any. In a
    sniffer capture there is no "our host": the central, which set the link up, ending it with
    LL_TERMINATE_IND counts as ending its own link (the peripheral is the device under test)."""
    lls: list[LlConnection] = by_connection(a, "ll_connections").get(c.id, [])
    for ll in lls:
        if ll.terminated_by == "central":
            return ll.terminate_frame if ll.terminate_frame else c.end_frame
    disc = memo(a, "disconnect_commands", lambda: _disconnect_commands(a))
    found = [i for i, _ in disc.by_conn.get(c.id, [])[:1]]
    times = disc.by_handle.get(c.handle)
    if times is not None:  # the first Disconnect for this handle within the connection's time
        k = bisect.bisect_left(times, (c.start_time_us or 0, -1))
        if k < len(times) and (c.end_time_us is None or times[k][0] <= c.end_time_us):
            found.append(times[k][1])
    return int(a.hci_commands[min(found)].frame) if found else None


@dataclass(slots=True)
class _Disconnects:
    by_conn: dict[Hashable, list[tuple[int, HciTransaction]]]  # (index in hci_commands, tx)
    by_handle: dict[int | None, list[tuple[int, int]]]  # (time, index), sorted


def _disconnect_commands(a: Analysis) -> _Disconnects:
    disc = [(i, tx) for i, tx in enumerate(a.hci_commands) if tx.opcode == 0x0406]
    by_handle: dict[int | None, list[tuple[int, int]]] = {}
    for i, tx in disc:
        by_handle.setdefault(tx.handle, []).append((tx.time_us, i))
    for v in by_handle.values():
        v.sort()
    return _Disconnects(group_by(disc, lambda x: x[1].connection), by_handle)


def remote_ended(a: Analysis, c: Connection) -> bool:
    """The remote's host ended the link (0x13-0x15, not after our own Disconnect)."""
    return (
        c.status == 0
        and c.end_frame is not None
        and c.disconnect_reason in REMOTE_REASONS
        and own_disconnect(a, c) is None
    )


def profiles_connected(a: Analysis, c: Connection) -> tuple[list[str], list[int]]:
    """Profiles set up on the connection (opened L2CAP channels, streams, HFP) and frames."""
    names: list[str] = []
    frames: list[int] = []
    chans: list[L2capChannel] = by_connection(a, "l2cap_channels").get(c.id, [])
    streams: list[AvdtpStream] = by_connection(a, "avdtp_streams").get(c.id, [])
    hfps: list[HfpSession] = by_connection(a, "hfp").get(c.id, [])
    for ch in chans:
        if ch.result == 0 and not ch.inferred:
            if ch.psm_name not in names:
                names.append(ch.psm_name)
            if ch.response_frame:
                frames.append(ch.response_frame)
    for st in streams:
        if st.configure_frame and "A2DP" not in names:
            names.append("A2DP")
            frames.append(st.configure_frame)
    for h in hfps:
        prof = h.profile.upper()
        if prof not in names:
            names.append(prof)
        if h.start_frame:
            frames.append(h.start_frame)
    return names, sorted(set(frames))


def opened_after(
    a: Analysis, connection: str | None, psm: int | None, frame: int
) -> L2capChannel | None:
    """The first channel to ``psm`` on the link that opened, asked for after ``frame`` (a
    bisect in the opened channels of each link and PSM, built once while the rules run)."""
    opened = memo(a, "opened_channels", lambda: _opened_channels(a))
    frames, chans = opened.get((connection, psm), ([], []))
    k = bisect.bisect_right(frames, frame)
    return chans[k] if k < len(chans) else None


def _opened_channels(a: Analysis) -> dict[Hashable, tuple[list[int], list[L2capChannel]]]:
    rows: dict[Hashable, list[tuple[int, int, L2capChannel]]] = {}
    for n, ch in enumerate(a.l2cap_channels):
        if ch.result == 0:
            rows.setdefault((ch.connection, ch.psm), []).append((ch.request_frame or 0, n, ch))
    out: dict[Hashable, tuple[list[int], list[L2capChannel]]] = {}
    for key, v in rows.items():
        v.sort(key=lambda r: (r[0], r[1]))
        out[key] = ([r[0] for r in v], [r[2] for r in v])
    return out


def host_was_done(a: Analysis, c: Connection) -> bool:
    """The capturing host itself had closed every profile channel (other than SDP queries) first."""
    signals: list[L2capSignal] = by_connection(a, "l2cap_signals").get(c.id, [])
    closers = {s.frame: s.direction for s in signals if s.name == "Disconnection Request"}
    chans: list[L2capChannel] = by_connection(a, "l2cap_channels").get(c.id, [])
    chans = [ch for ch in chans if ch.result == 0]
    chans = [ch for ch in chans if ch.psm != 0x0001]
    return bool(chans) and all(
        ch.close_frame is not None and closers.get(ch.close_frame) == "sent" for ch in chans
    )


def short_remote_drops(a: Analysis, max_s: float) -> list[tuple[Connection, list[str], list[int]]]:
    out = []
    for c in a.connections:
        if c.transport not in ("br_edr", "le") or c.inferred or not remote_ended(a, c):
            continue
        if c.start_time_us is None or c.end_time_us is None:
            continue
        if (c.end_time_us - c.start_time_us) / 1e6 >= max_s:
            continue
        names, frames = profiles_connected(a, c)
        if names and not host_was_done(a, c):
            out.append((c, names, frames))
    return out


RFCOMM_PROFILE_NAMES = {
    "hfp": "Hands-Free",
    "hsp": "Headset",
    "multiplexer": "the RFCOMM multiplexer",
}


def profile_label(d: RfcommDlc) -> str:
    """What an RFCOMM DLC was for, as a user names it (the SDP service name when known)."""
    if d.profile:
        return RFCOMM_PROFILE_NAMES.get(d.profile, d.profile)
    return f"server channel {d.channel}" if d.channel else "the RFCOMM multiplexer"


#: Flags AD type bit 2 (Core Supplement Part A §1.3)
BREDR_NOT_SUPPORTED = 0x04


def _bredr_addresses(a: Analysis) -> set[str | None]:
    known: set[str | None] = {d.address for d in a.discovered}
    known |= {c.address for c in a.connections if c.transport == "br_edr" and c.ok}
    known |= {
        p.address for p in a.pairing if p.transport == "br_edr" and p.link_key_request is not None
    }
    return known


def _first_advertisers(a: Analysis) -> dict[str | None, Advertiser]:
    out: dict[str | None, Advertiser] = {}
    for x in a.advertisers:
        out.setdefault(x.address, x)
    return out


def _bredr_known(a: Analysis, addr: str) -> bool:
    """Anything that shows the address speaks BR/EDR."""
    if addr in memo(a, "bredr_known", lambda: _bredr_addresses(a)):
        return True  # inquiry, a BR/EDR link, or a BR/EDR link key held (or asked for)
    dev = a.device(addr)
    return dev is not None and dev.class_of_device is not None


def _le_evidence(a: Analysis, addr: str) -> tuple[list[str], list[int]]:
    why: list[str] = []
    frames: list[int] = []
    adv = memo(a, "advertiser_by_address", lambda: _first_advertisers(a)).get(addr)
    if adv is not None:
        if adv.flags is not None and adv.flags & BREDR_NOT_SUPPORTED:
            why.append("its advertising flags say BR/EDR Not Supported")
        else:
            why.append(f"it was heard advertising over LE ({adv.reports} reports)")
        if adv.address_type and "random" in adv.address_type.lower():
            why.append("its address is a random LE address")
        if adv.first_frame:
            frames.append(adv.first_frame)
    le: list[Connection] = memo(
        a,
        "le_links_by_address",
        lambda: group_by(
            (c for c in a.connections if c.transport == "le" and c.ok), lambda c: c.address
        ),
    ).get(addr, [])
    if le:
        why.append(f"{a.host} connected to it over LE (frame {le[0].start_frame})")
        frames.append(le[0].start_frame or 0)
    return why, [f for f in frames if f]


def le_only_evidence(a: Analysis, addr: str) -> tuple[list[str], list[int]]:
    """Why the capture knows ``addr`` only as an LE device (advertising, LE links) and never
    over BR/EDR (inquiry, a BR/EDR link or key, a class of device); empty when it does not."""
    if _bredr_known(a, addr):
        return [], []
    return _le_evidence(a, addr)
