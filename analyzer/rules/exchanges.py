"""Every request/response exchange the sessions rebuilt, in one shape, for the timing rules.

Not a rule: ``response_timeout`` and ``late_response`` both read :func:`exchanges`. Each protocol
contributes its own requests: HCI commands (Command Status/Complete, then the completion event),
L2CAP signalling, SDP, AVDTP, RFCOMM AT commands, SMP and ATT (their 30 s transaction timers,
Core Vol 3 Part H §3.4 and Part F §3.3.3, are their own deadlines).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from analyzer.analysis import Analysis

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

    details: dict[str, Any] = field(default_factory=dict)


def _silent(direction: str) -> str:
    return "remote device" if direction == "sent" else "local host"


#: pairing methods with a person in the loop (confirming, typing a passkey or PIN)
USER_METHODS = frozenset({"numeric_comparison", "passkey", "legacy_pin", "ssp_user_confirmation"})
#: a page is bounded by the Page Timeout the host set; allow this much for the LMP set-up after it
PAGE_SETUP_MARGIN_S = 1.0


def _user_paced(a: Analysis, tx: Any) -> bool:
    """Did a person take part in this Authentication Requested (a pairing with a user step
    between the command and its completion)?"""
    end = tx.complete_frame if tx.complete_frame is not None else 1 << 62
    return any(
        p.connection == tx.connection and p.method in USER_METHODS and p.frames
        and p.frames[0] <= end and p.frames[-1] >= tx.frame
        for p in a.pairing
    )  # fmt: skip


def exchanges(a: Analysis) -> Iterator[Exchange]:
    page_timeout = (a.extra.get("controller") or {}).get("page_timeout_s")
    for tx in a.extra.get("hci_commands", []):
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
            details={"opcode": tx.opcode},
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
                details={"opcode": tx.opcode, "completion_status": tx.complete_status},
            )
    for s in a.extra.get("l2cap_signals", []):
        if not s.get("is_request") or s.get("suspect"):
            continue
        yield Exchange(
            "l2cap",
            f"L2CAP {s['name']}",
            s["frame"],
            s["time_us"],
            s.get("response_frame"),
            s.get("response_time_us"),
            _silent(s["direction"]),
            s.get("connection"),
            s.get("address"),
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
        for at in getattr(h, "at", []):
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
    for layer in ("smp", "att"):
        sect = a.extra.get(layer)
        items = sect.get("transactions", []) if isinstance(sect, dict) else (sect or [])
        for t in items:
            if not isinstance(t, dict) or t.get("request_frame") is None:
                continue
            yield Exchange(
                layer,
                f"{layer.upper()} {t.get('request') or t.get('name') or 'request'}",
                t["request_frame"],
                t["request_time_us"],
                t.get("response_frame"),
                t.get("response_time_us"),
                _silent(t.get("direction", "sent")),
                t.get("connection"),
                t.get("address"),
                deadline_s=PROTOCOL_TIMER_S[layer],
            )


def _conn_addr(a: Analysis, conn_id: str | None) -> str | None:
    c = a.connection(conn_id)
    return c.address if c else None
