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

import polars as pl

from analyzer.capture import Capture

PROHIBITED = b"PROHIBITED"
#: payload lengths (no H4 byte) of an ACL cut to 9 / 14 bytes with its H4 byte
FILTER_CUT_LENGTHS = (8, 13)
MIN_CUT_FRAMES = 3


def detect(cap: Capture, name: str | None = None) -> str | None:
    """The reason ``cap`` is a filtered snoop log, or None."""
    base = os.path.basename(name if name is not None else cap.meta.path)
    base = base.split("!")[-1].split("/")[-1]
    if ".filtered" in base.lower():
        return f"file name {base!r} is Android's filtered snoop log"
    f = cap.frames
    if f.height == 0:
        return None
    is_acl = pl.col("kind") == "acl"
    cut_acl = is_acl & (pl.col("orig_length") > pl.col("length"))
    counts = f.select(
        is_acl.sum().alias("acl"),
        cut_acl.sum().alias("cut"),
        (cut_acl & pl.col("length").is_in(list(FILTER_CUT_LENGTHS))).sum().alias("filt"),
    ).row(0)
    n_acl, n_cut, filt = (int(x) for x in counts)
    if n_acl == 0:
        return None
    snooz = cap.meta.format == "btsnooz" or "btsnooz" in base.lower()
    if n_cut and not snooz and filt >= MIN_CUT_FRAMES and 2 * filt >= n_cut:
        return f"{filt} ACL packets cut to ACL + L2CAP headers (Android filtered snoop mode)"
    # PROHIBITED markers: scan ACL payloads that are long enough to hold it (few, short: the
    # marker replaces the payload)
    if cap.meta.link_type != 1002:  # Android snoop logs only
        return None
    cand = f.filter(is_acl & pl.col("length").is_between(len(PROHIBITED), 64)).select(
        "offset", "length"
    )
    if cand.height:
        for payload in cap.payloads(cand["offset"].to_numpy(), cand["length"].to_numpy()):
            if PROHIBITED in payload:
                return "ACL payloads replaced by PROHIBITED (Android filtered snoop mode)"
    return None


def apply(cap: Capture, name: str | None = None) -> Capture:
    """Set ``cap.meta.filtered`` (and a warning) when :func:`detect` finds a reason."""
    if cap.meta.filtered:
        return cap
    reason = detect(cap, name)
    if reason:
        cap.meta.filtered = True
        cap.warnings.append(
            f"filtered snoop log ({reason}): payloads cut and media may be dropped; "
            "media-rate and payload checks are unreliable"
        )
    return cap
