"""The scrubber's parts: the address mapping keeps address types, the LE CRC and its linear fix,
HFP numbers and caller names, pcapng comments, and the ``scrub`` command line (issue 23).

The small captures here are built by hand where bumble cannot produce the content (a pcapng
comment, an HFP +CLIP line carrying a caller id): each frame follows the spec layout named in
its builder.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.decode.at import parse_line, split_lines
from analyzer.readers import load
from analyzer.scrub import l2cap_fcs, scrub
from analyzer.scrub.collect import ADV_CRC_STATE, ll_crc_state
from analyzer.scrub.mapping import Mapper, identifying, new_secret
from tests.builders import PcapngBuilder
from tests.oracle import need_tshark, run_tshark, tshark_where

#: an ADV_IND as mikeryan/crackle's le_secure_connections.pcapng holds it (frame 1): access
#: address, header, AdvA + AD (Flags, 16-bit UUIDs, Complete Local Name), CRC
ADV_IND = bytes.fromhex(
    "d6be898e 4021 16234282437d 02011a 03031118 13 09416c657274204e6f74696669636174696f6e e5b902"
)


def display(wire: bytes) -> bytes:
    return wire[::-1]


# -- the mapping ----------------------------------------------------------------------------------
@pytest.mark.parametrize("top", [0xC0, 0x40, 0x00])
def test_a_random_address_keeps_its_kind(top: int) -> None:
    """Static (11), resolvable (01) and non-resolvable (00) private addresses stay what they are
    (Core Vol 6 Part B §1.3.2)."""
    m = Mapper(new_secret("s"))
    for i in range(50):
        wire = bytes([i + 1, 0x22, 0x33, 0x44, 0x55, top | 0x15])
        m.random_addresses.add(wire)
        fake = m.address(wire)
        assert fake != wire
        assert display(fake)[0] & 0xC0 == top


def test_a_public_address_gets_a_local_oui_unless_kept() -> None:
    wire = bytes.fromhex("9ef4c62d6594")  # 94:65:2D:C6:F4:9E
    fake = display(Mapper(new_secret("s")).address(wire))
    assert fake[0] & 0x03 == 0x02  # locally administered, unicast: no vendor's OUI
    kept = display(Mapper(new_secret("s"), keep_oui=True).address(wire))
    assert kept[:3] == bytes.fromhex("94652d") and kept[3:] != bytes.fromhex("c6f49e")


def test_the_mapping_is_consistent_per_run_and_keyed_by_the_secret() -> None:
    wire = bytes.fromhex("9ef4c62d6594")
    a, b = Mapper(new_secret("one")), Mapper(new_secret("two"))
    assert a.address(wire) == a.address(wire) == Mapper(new_secret("one")).address(wire)
    assert a.address(wire) != b.address(wire)
    assert a.name(b"Pixel Buds") != b.name(b"Pixel Buds")
    assert len(a.name("Daniele’s MacBook".encode())) == len("Daniele’s MacBook".encode())
    c = Mapper(new_secret("s"))  # the scrubber maps the longest names first:
    assert c.name(b"Pixel Buds A-Series").startswith(c.name(b"Pixel"))  # a shortened name
    assert Mapper(new_secret(None)).address(wire) != Mapper(new_secret(None)).address(wire)


def test_filler_is_not_an_address() -> None:
    assert not identifying(bytes(6))
    assert not identifying(bytes.fromhex("010100000000"))
    assert identifying(bytes.fromhex("000000aa7159"))  # Android-redacted: OUI kept


def test_numbers_keep_their_shape() -> None:
    m = Mapper(new_secret("s"))
    fake = m.number(b"+15551234567")
    assert len(fake) == 12 and fake[:1] == b"+" and fake != b"+15551234567" and fake.isascii()


# -- LE CRC and L2CAP FCS ------------------------------------------------------------
def test_ll_crc_matches_a_real_packet_and_fixes_linearly() -> None:
    """Vol 6 Part B §3.1.1: the CRC of a real advertising packet; changing payload bytes and
    XOR-ing the CRC of the difference (from a zero state) gives the new packet's CRC."""
    pdu, crc = ADV_IND[4:-3], int.from_bytes(ADV_IND[-3:], "little")
    assert ll_crc_state(pdu, ADV_CRC_STATE) == crc
    new = bytearray(pdu)
    new[2:8] = bytes.fromhex("112233445566")
    diff = bytes(x ^ y for x, y in zip(pdu, new, strict=True))
    assert ll_crc_state(bytes(new), ADV_CRC_STATE) == crc ^ ll_crc_state(diff, 0)


def test_l2cap_fcs_of_a_real_ertm_frame() -> None:
    """cheoljun99's OBEX Connect response I-frame (L2CAP header, control, OBEX, FCS 0xa7fb)."""
    frame = bytes.fromhex("0f0068000403a0000bcb00000001490003fba7")
    assert l2cap_fcs(frame[:-2]) == 0xA7FB


# -- built captures ------------------------------------------------------------
def _btsnoop(records: list[tuple[bool, bytes]]) -> bytes:
    """btsnoop v1, datalink 1002 (H4): (received, H4 packet) per record."""
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002))
    t = 0x00E03AB44A676000
    for received, pkt in records:
        t += 1000
        flags = (1 if received else 0) | (2 if pkt[0] in (1, 4) else 0)
        out += struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, t) + pkt
    return bytes(out)


def _rfcomm_acl(text: bytes, handle: int = 0x000B) -> bytes:
    """H4 ACL (Vol 4 Part E §5.4.2) / L2CAP basic frame on CID 0x0041 / RFCOMM UIH on DLCI 2
    (TS 07.10 §5.2.1: address, control 0xEF, length, information, FCS over address+control)."""
    rf = bytes([0x0B, 0xEF, (len(text) << 1) | 1]) + text + b"\x9a"
    l2 = struct.pack("<HH", len(rf), 0x0041) + rf
    return b"\x02" + struct.pack("<HH", handle | 0x2000, len(l2)) + l2


def test_hfp_numbers_and_caller_names_are_replaced(tmp_path: Path) -> None:
    lines = [
        b'\r\n+CLIP: "+15551234567",145,,,"Alice Example"\r\n',
        b'\r\n+CCWA: "0612345678",129,1\r\n',
        b"ATD+15557654321;\r",
        b'\r\n+CNUM: ,"5559876543",129,,4\r\n',
    ]
    path = tmp_path / "hfp.btsnoop"
    path.write_bytes(_btsnoop([(i % 2 == 0, _rfcomm_acl(t)) for i, t in enumerate(lines)]))
    result = scrub(load(path), seed="s")
    secrets = [b"15551234567", b"0612345678", b"15557654321", b"5559876543", b"Alice Example"]
    original = path.read_bytes()
    assert all(s in original for s in secrets)
    assert len(result.data) == len(original)
    assert not [s for s in secrets if s in result.data]
    assert result.counts["numbers"] == 4
    # the lines still read as the same AT results/commands, same lengths
    out = tmp_path / "scrubbed.btsnoop"
    out.write_bytes(result.data)
    cap = load(out)
    for i, text in enumerate(lines):
        got = cap.payload(i + 1)[4 + 4 + 3 : -1]
        before, after = parse_line(split_lines(text)[0]), parse_line(split_lines(got)[0])
        assert len(got) == len(text)
        assert (after.kind, after.name, len(after.params)) == (
            before.kind,
            before.name,
            len(before.params),
        )


def _link_key_notification(addr: bytes, key: bytes) -> bytes:
    """H4 event: Link Key Notification (Vol 4 Part E §7.7.24): BD_ADDR, key, key type."""
    return b"\x04\x18\x17" + addr + key + b"\x05"


def test_pcapng_comments_go_and_keys_are_zeroed(tmp_path: Path) -> None:
    addr = bytes.fromhex("9ef4c62d6594")
    key = bytes(range(0x10, 0x20))
    b = PcapngBuilder().shb().idb(201)
    b.epb(0, 1, struct.pack(">I", 1) + _link_key_notification(addr, key), comment="sesskey=abcd")
    b.epb(0, 2, struct.pack(">I", 1) + b"\x04\x0e\x04\x01\x03\x0c\x00", comment="second")
    path = tmp_path / "in.pcapng"
    path.write_bytes(b.bytes())
    result = scrub(load(path), seed="s")
    assert result.format == "pcapng" and not result.rewritten
    assert b"sesskey" not in result.data and b"second" not in result.data
    assert key not in result.data and addr not in result.data and addr[::-1] not in result.data
    out = tmp_path / "out.pcapng"
    out.write_bytes(result.data)
    again = load(out)
    assert len(again) == 2 and not again.comments
    need_tshark()
    assert len(run_tshark(out).splitlines()) == 2


def test_cli_scrub(tmp_path: Path) -> None:
    addr = bytes.fromhex("9ef4c62d6594")
    path = tmp_path / "in.btsnoop"
    path.write_bytes(_btsnoop([(True, _link_key_notification(addr, bytes(range(16, 32))))]))
    out = tmp_path / "out.btsnoop"
    runner = CliRunner()
    res = runner.invoke(cli, ["scrub", str(path), "-o", str(out), "--seed", "s", "--keep-oui"])
    assert res.exit_code == 0, res.output
    assert "1 addresses remapped" in res.output and "1 key/PIN/passkey" in res.output
    data = out.read_bytes()
    assert data == scrub(load(path), seed="s", keep_oui=True).data
    assert addr not in data and addr[3:] in data  # the OUI (top 3 octets) kept
    bad = runner.invoke(cli, ["scrub", str(tmp_path / "missing"), "-o", str(out)])
    assert bad.exit_code == 2 and "no such file" in bad.output


# -- analyze --anonymize --------------------------------------------------------------------------
BUNDLED = Path(__file__).resolve().parents[2] / "captures" / "real"


@pytest.mark.parametrize(
    "path",
    [
        BUNDLED / "francozappa_bluffs_sc-pixelbuds-aseries.pcapng",
        BUNDLED / "Swastik36_OPPO-Earbuds_btsnoop_hci.log",
    ],
    ids=lambda p: p.name,
)
def test_analyze_anonymize(path: Path) -> None:
    """The anonymized report has the same findings and names no original address or name."""
    runner = CliRunner()
    plain = runner.invoke(cli, ["analyze", str(path), "--json"])
    anon = runner.invoke(cli, ["analyze", str(path), "--json", "--anonymize"])
    assert plain.exit_code == anon.exit_code == 0, anon.output
    a, b = json.loads(plain.output), json.loads(anon.output)
    assert sorted((f["id"], f["count"]) for f in a["findings"]) == sorted(
        (f["id"], f["count"]) for f in b["findings"]
    )
    addresses = {d["address"] for d in a["devices"]}
    names = {d["name"] for d in a["devices"] if d.get("name") and len(d["name"]) >= 4}
    assert addresses and names
    text = anon.output.upper()
    assert not [x for x in addresses if x.upper() in text]
    assert not [n for n in names if n in anon.output]
    assert len(b["devices"]) == len(a["devices"])
    # --device with an original address selects its fake
    first = sorted(addresses)[0]
    one = runner.invoke(cli, ["analyze", str(path), "--json", "--anonymize", "--device", first])
    assert one.exit_code == 0, one.output
    assert first.upper() not in one.output.upper()


def _obex_put(name: str, body: bytes) -> bytes:
    """OBEX Put (IrOBEX §3.4.3): Name (unicode, 0x01), Type (0x42), Body (0x48) headers."""
    uname = name.encode("utf-16-be") + b"\x00\x00"
    hdrs = b"\x01" + struct.pack(">H", 3 + len(uname)) + uname
    hdrs += b"\x42" + struct.pack(">H", 3 + 11) + b"text/plain\x00"
    hdrs += b"\x48" + struct.pack(">H", 3 + len(body)) + body
    return b"\x02" + struct.pack(">H", 3 + len(hdrs)) + hdrs


def test_obex_over_rfcomm_is_blanked_across_frames(tmp_path: Path) -> None:
    """OPP over RFCOMM (GOEP 1.x): Connect, then a Put whose Body runs over two UIH frames; the
    Name and Body values are zeroed in both frames, the Type and the framing stay."""
    connect = bytes.fromhex("80 0007 10 00 0400")  # Connect: length 7, OBEX 1.0, max 1024
    put = _obex_put("secret-contacts.vcf", b"BEGIN:VCARD\r\nTEL:+15551234567\r\nEND:VCARD")
    cut = len(put) - 20
    path = tmp_path / "opp.btsnoop"
    path.write_bytes(
        _btsnoop([(False, _rfcomm_acl(connect)), (False, _rfcomm_acl(put[:cut])),
                  (False, _rfcomm_acl(put[cut:]))])
    )  # fmt: skip
    result = scrub(load(path), seed="s")
    data = result.data
    assert "secret-contacts".encode("utf-16-be") not in data
    assert b"VCARD" not in data and b"5551234567" not in data and b"END:" not in data
    assert b"text/plain" in data and len(data) == len(path.read_bytes())
    assert result.counts["obex_ranges_blanked"] == 3  # Name, Body in frame 2, Body in frame 3


def test_pins_passkeys_and_ltks_are_zeroed(tmp_path: Path) -> None:
    """PIN Code Request Reply (§7.1.12), User Passkey Request Reply (§7.1.33), User Passkey
    Notification (§7.7.48), LE Long Term Key Request Reply (§7.8.25), LE Enable Encryption
    (§7.8.24): the values are zeroed, the parameters around them stay, and tshark reads zeros."""
    addr = bytes.fromhex("9ef4c62d6594")
    pin = b"8264" + bytes(12)
    ltk = bytes(range(0xA0, 0xB0))
    records = [
        (False, b"\x01\x0d\x04\x17" + addr + b"\x04" + pin),
        (False, b"\x01\x2e\x04\x0a" + addr + struct.pack("<I", 734051)),
        (True, b"\x04\x3b\x0a" + addr + struct.pack("<I", 734051)),
        (False, b"\x01\x1a\x20\x12" + b"\x40\x00" + ltk),
        (False, b"\x01\x19\x20\x1c" + b"\x40\x00" + bytes(range(8)) + b"\x12\x34" + ltk),
    ]
    path = tmp_path / "keys.btsnoop"
    path.write_bytes(_btsnoop(records))
    result = scrub(load(path), seed="s")
    data = result.data
    assert b"8264" not in data and struct.pack("<I", 734051) not in data and ltk not in data
    assert bytes(range(8)) + b"\x12\x34" in data  # Rand and EDIV name the key, not secret
    assert result.counts["zeroed_pin"] == 1 and result.counts["zeroed_passkey"] == 2
    assert result.counts["zeroed_ltk"] == 2
    out = tmp_path / "out.btsnoop"
    out.write_bytes(data)
    need_tshark()
    rows = tshark_where(out, "bthci_cmd || bthci_evt", "bthci_cmd.pin_code", "bthci_cmd.passkey",
                        "bthci_evt.passkey", "bthci_cmd.le_long_term_key")  # fmt: skip
    values = [v for row in rows for v in row if v]
    assert values and all(set(v.replace(":", "")) <= {"0"} for v in values), values
