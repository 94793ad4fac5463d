"""Recognise Android's *filtered* snoop mode (DOMAIN.md "Android's file set"; issue 3 §3).

Signs, any of which marks a capture filtered:

* the file (or zip entry) is named ``btsnoop_hci.log.filtered`` / ``.filtered.last`` (AOSP
  ``snoop_logger.cc`` ``get_btsnoop_log_path(..., filtered)`` appends ``.filtered``);
* ACL payloads replaced by the ASCII marker ``PROHIBITED`` (current AOSP profile filter);
* ACL records cut to 9 or 14 bytes *counted with the H4 byte* (ACL + L2CAP headers, optionally a
  few bytes more) while the original was longer: our payload (no H4 byte) is 8 or 13 bytes. At least
  3 such frames, and they make up at least half of the cut ACL frames.

A cut payload alone is not a sign: btsnooz logs keep ACL to 14 bytes *without* the H4 byte
(``kMaxBtsnoozAclSize`` = 14, ``btsnoop_calculate_packet_length``) — those captures are not filtered
snoop logs (their ACL headers, so media rates, are intact) and are reported with
``meta.extra["payloads_cut"]`` instead; a name containing ``btsnooz`` never trips the length rule.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from analyzer.codes import K_ACL, iter_payloads

if TYPE_CHECKING:
    from analyzer.capture import Capture

PROHIBITED = b"PROHIBITED"
#: payload lengths (no H4 byte) of an ACL cut to 9 / 14 bytes with its H4 byte
FILTER_CUT_LENGTHS = (8, 13)
MIN_CUT_FRAMES = 3
#: the longest ACL payload searched for the marker (it replaces the payload: such packets are
#: short)
MARKER_MAX = 64


def detect(cap: Capture, name: str | None = None) -> str | None:
    """The reason ``cap`` is a filtered snoop log, or None."""
    f = cap.frames
    return detect_columns(
        name if name is not None else cap.meta.path,
        cap.meta.format,
        cap.meta.link_type,
        f["kind"].to_physical().to_numpy(),
        f["length"].to_numpy(),
        f["orig_length"].to_numpy(),
        f["offset"].to_numpy(),
        cap.buffer,
    )


def detect_columns(
    name: str,
    fmt: str,
    link_type: int | None,
    kind: np.ndarray,
    length: np.ndarray,
    orig_length: np.ndarray,
    offset: np.ndarray,
    buffer: object,
) -> str | None:
    """:func:`detect` on the frame table's columns (``kind``: integer codes): the file or entry
    ``name``, its format and link type, and the bytes the offsets point into."""
    base = os.path.basename(name)
    base = base.split("!")[-1].split("/")[-1]
    if ".filtered" in base.lower():
        return f"file name {base!r} is Android's filtered snoop log"
    acl = kind == K_ACL
    if not acl.any():
        return None
    cut = acl & (orig_length > length)
    n_cut = int(cut.sum())
    snooz = fmt == "btsnooz" or "btsnooz" in base.lower()
    if n_cut and not snooz:
        filt = int((cut & np.isin(length, FILTER_CUT_LENGTHS)).sum())
        if filt >= MIN_CUT_FRAMES and 2 * filt >= n_cut:
            return f"{filt} ACL packets cut to ACL + L2CAP headers (Android filtered snoop mode)"
    # PROHIBITED markers: scan ACL payloads that are long enough to hold it (few, short)
    if link_type != 1002:  # Android snoop logs only
        return None
    rows = np.flatnonzero(acl & (length >= len(PROHIBITED)) & (length <= MARKER_MAX))
    for payload in iter_payloads(buffer, offset[rows], length[rows]):
        if PROHIBITED in payload:
            return "ACL payloads replaced by PROHIBITED (Android filtered snoop mode)"
    return None


def warning(reason: str) -> str:
    """The capture's warning for a filtered snoop log found by ``reason``."""
    return (
        f"filtered snoop log ({reason}): payloads cut and media may be dropped; "
        "media-rate and payload checks are unreliable"
    )


def apply(cap: Capture, name: str | None = None) -> Capture:
    """Set ``cap.meta.filtered`` (and a warning) when :func:`detect` finds a reason."""
    if cap.meta.filtered:
        return cap
    reason = detect(cap, name)
    if reason:
        cap.meta.filtered = True
        cap.warnings.append(warning(reason))
    return cap
