"""Stateless protocol decoders: bytes in, typed records out, never an exception.

Importing this package imports every decoder so upper layers register their PSMs with
:mod:`analyzer.decode.l2cap` (SDP 0x0001, AVDTP 0x0019).
"""

from __future__ import annotations

from analyzer.decode import a2dp, at, avdtp, hci, l2cap, rfcomm, sdp

__all__ = ["a2dp", "at", "avdtp", "hci", "l2cap", "rfcomm", "sdp"]
