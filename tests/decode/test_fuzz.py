"""Property tests: every decoder returns a record on arbitrary bytes and never raises.

``@never_raise`` turns a decoder's exception into a record with a "decoder error" anomaly so that
one bad packet cannot stop an analysis; these tests call the decoders *under* that safety net
(``__wrapped__``), so a decoder that raises fails them (shown by an injected raising decoder)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer.decode
from analyzer.decode import a2dp, att, avdtp, hci, l2cap, le_adv, le_ll, rfcomm, sdp, smp

BYTES = st.binary(max_size=300)

#: every decoder behind @never_raise, with the extra arguments it takes
DECODERS: list[tuple[Callable[..., object], tuple[object, ...]]] = [
    (hci.decode_command, ()),
    (hci.decode_event, ()),
    (hci.decode_acl, ()),
    (l2cap.decode_l2cap, ()),
    (l2cap.decode_signalling, ()),
    (l2cap.decode_signalling, (True,)),
    (sdp.decode_sdp, ()),
    (avdtp.decode_avdtp, ()),
    (a2dp.decode_codec, ()),
    (att.decode_att, ()),
    (smp.decode_smp, ()),
    (rfcomm.decode_rfcomm, (True,)),
    (rfcomm.decode_rfcomm, (False,)),
    (le_ll.decode_adv_pdu, ()),
    (le_ll.decode_data_pdu, ()),
    (le_adv.decode_ad, ()),
]


def _name(fn: Callable[..., object]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def under_the_net() -> set[str]:
    """Every function of analyzer.decode wrapped by @never_raise (found by its wrapper's code)."""
    found = set()
    for info in pkgutil.iter_modules(analyzer.decode.__path__):
        module = importlib.import_module(f"analyzer.decode.{info.name}")
        for obj in vars(module).values():
            code = getattr(obj, "__code__", None)
            if code is not None and code.co_qualname.startswith("never_raise."):
                found.add(_name(obj))
    return found


def test_every_decoder_under_the_net_is_fuzzed() -> None:
    """A new @never_raise decoder must join DECODERS (else its bugs stay hidden)."""
    guarded = under_the_net()
    assert len(guarded) >= 14
    assert guarded == {_name(d) for d, _ in DECODERS}


def assert_decodes(decoder: Callable[..., object], b: bytes, *args: object) -> None:
    """The decoder itself (not its never-raise wrapper) returns on ``b``."""
    raw = getattr(decoder, "__wrapped__", decoder)
    try:
        raw(b, *args)
    except Exception as exc:
        raise AssertionError(f"{decoder.__name__} raised on {b.hex()}: {exc!r}") from exc


@settings(max_examples=300, deadline=None)
@given(BYTES)
def test_no_decoder_raises(b: bytes) -> None:
    for decoder, args in DECODERS:
        assert_decodes(decoder, b, *args)
    assert isinstance(sdp.parse_attribute_lists(b), sdp.SdpRecords)


def test_the_check_catches_a_raising_decoder() -> None:
    from analyzer.decode.base import never_raise

    def raw_record(data: bytes, anomaly: str | None = None) -> str:
        return anomaly or ""

    @never_raise(raw_record)
    def bad_decoder(data: bytes) -> str:
        return str(data[5])  # IndexError on short input

    assert bad_decoder(b"\x01").startswith("decoder error")  # the safety net hides it ...
    with pytest.raises(AssertionError, match="bad_decoder raised"):
        assert_decodes(bad_decoder, b"\x01")  # ... the fuzz check does not


@settings(max_examples=400, deadline=None)
@given(BYTES)
def test_decoders_never_raise(b: bytes) -> None:
    assert isinstance(hci.decode_command(b), hci.HciCommand)
    assert isinstance(hci.decode_event(b), hci.HciEvent)
    assert isinstance(hci.decode_acl(b), hci.AclHeader)
    assert isinstance(l2cap.decode_l2cap(b), l2cap.L2capFrame)
    assert all(isinstance(s, l2cap.L2capSignal) for s in l2cap.decode_signalling(b))
    assert all(isinstance(s, l2cap.L2capSignal) for s in l2cap.decode_signalling(b, le=True))
    assert isinstance(sdp.decode_sdp(b), sdp.SdpPdu)
    assert isinstance(sdp.parse_attribute_lists(b), sdp.SdpRecords)
    assert isinstance(avdtp.decode_avdtp(b), avdtp.AvdtpPdu)
    assert isinstance(a2dp.decode_codec(b), a2dp.CodecInfo)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), BYTES)
def test_structured_headers_never_raise(code: int, sub: int, rest: bytes) -> None:
    """Valid-looking headers with random bodies reach every table row."""
    ev = bytes([code, len(rest) + 1, sub]) + rest
    assert hci.decode_event(ev).code == code
    le = bytes([0x3E, len(rest) + 1, sub]) + rest
    assert hci.decode_event(le).subevent == sub
    cmd_op = (code << 8 | sub).to_bytes(2, "little")
    assert hci.decode_command(cmd_op + bytes([len(rest)]) + rest).opcode == code << 8 | sub
    a = avdtp.decode_avdtp(bytes([code & 0xF3, sub & 0x0F]) + rest)
    assert isinstance(a, avdtp.AvdtpPdu)
    assert isinstance(
        sdp.decode_sdp(bytes([code & 7, 0, 1, 0, len(rest) & 0xFF]) + rest), sdp.SdpPdu
    )
    sig = bytes([code & 0x1F, 1]) + len(rest).to_bytes(2, "little") + rest
    assert l2cap.decode_signalling(sig)[0].code == code & 0x1F


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.lists(st.tuples(st.integers(0, 250), st.integers(0, 50))))
def test_columns_never_raise(buf: bytes, rows: list[tuple[int, int]]) -> None:
    data = np.frombuffer(buf, dtype=np.uint8)
    off = np.array([r[0] for r in rows], dtype=np.int64)
    ln = np.array([min(r[1], max(0, len(buf) - r[0])) for r in rows], dtype=np.int64)
    cols = hci.acl_columns(data, off, ln)
    assert all(len(v) == len(rows) for v in cols.values())
    assert len(hci.event_columns(data, off, ln)["code"]) == len(rows)
    assert len(hci.command_columns(data, off, ln)["opcode"]) == len(rows)


@given(st.lists(st.binary(max_size=20), max_size=5))
def test_join_fragments_never_raises(frags: list[bytes]) -> None:
    joined, _ = avdtp.join_fragments(frags)
    assert isinstance(joined, bytes)
