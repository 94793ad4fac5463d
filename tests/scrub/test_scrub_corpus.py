"""``btanalyze scrub`` on every real capture of ../shared/captures (issue 23 acceptance).

For each capture: the scrubbed file

* holds none of the originals: every device address the analysis of the original names (wire
  and display byte order, and as ``AA:BB:..`` text in both cases; an address tshark reads only
  from malformed frames or LE packets failing their CRC is noise that may equal any 6 bytes:
  for those, the analysis of the scrubbed file must not name it), every device name it names
  (4 bytes or more: shorter strings occur by chance in any binary), every key tshark finds in the
  original (HCI link keys / LTKs / IRKs, SMP LTK / IRK / CSRK, both byte orders);
* reads in tshark with no malformed frame the original did not have, and with the same frames
  failing their LE CRC as the original (the CRCs were recomputed, not broken or "fixed"), but
  for frames tshark gave up on before reaching the CRC in one of the two files;
* analyses to the same findings (ids and counts).

Captures whose container cannot be kept (btsnooz, gzip) are compared with the unscrubbed
conversion of the same log (``analyzer.writers``), as that is what tshark can read.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import Analysis, analyze_capture
from analyzer.model.base import to_jsonable
from analyzer.readers import load
from analyzer.scrub import GLOBAL_MIN, scrub
from analyzer.scrub.mapping import identifying
from analyzer.writers import choose_format, write
from tests.conftest import analysis_of, shared_captures
from tests.oracle import need_tshark, tshark_where

ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
#: tshark fields holding keys (HCI Vol 4 Part E §7.1.10, §7.7.24, §7.8.24-25, §7.8.38; SMP
#: Vol 3 Part H §3.6.2/§3.6.4/§3.6.6)
KEY_FIELDS = (
    "bthci_evt.link_key",
    "bthci_cmd.link_key",
    "bthci_cmd.le_long_term_key",
    "bthci_cmd.le_peer_irk",
    "bthci_cmd.le_local_irk",
    "btsmp.long_term_key",
    "btsmp.id_resolving_key",
    "btsmp.signature_key",
)
#: address fields of LE advertising (HCI reports, Vol 4 Part E §7.7.65.2; LL PDUs, Vol 6 Part B
#: §2.3): what a damaged report or a packet failing its CRC holds there may be any 6 bytes
LL_ADDRESSES = (
    "bthci_evt.bd_addr",
    "btle.advertising_address",
    "btle.target_address",
    "btle.scanning_address",
    "btle.initiator_address",
)
#: what the sniffer said of the CRC (nRF Sniffer flags; DLT 256 RF header flags)
SNIFFER_CRC = ("nordic_ble.crcok", "btle_rf.flags.crc_checked", "btle_rf.flags.crc_valid")
#: parts of the analysis that name devices (address + name)
NAMED = ("devices", "discovered", "advertisers")


def _strings(doc: Any, out: set[str]) -> None:
    if isinstance(doc, dict):
        for v in doc.values():
            _strings(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _strings(v, out)
    elif isinstance(doc, str) and ADDRESS.match(doc):
        out.add(doc)


def original_addresses(analysis: Analysis) -> set[bytes]:
    """Every identifying device address the analysis mentions, in wire order."""
    found: set[str] = set()
    _strings(to_jsonable(analysis), found)
    wires = {bytes.fromhex(a.replace(":", ""))[::-1] for a in found}
    return {w for w in wires if identifying(w)}


def original_names(analysis: Analysis) -> set[bytes]:
    doc = to_jsonable(analysis)
    assert isinstance(doc, dict)
    names: set[str] = set()
    for part in NAMED:
        for item in doc.get(part) or []:
            if isinstance(item, dict) and item.get("name"):
                names.add(item["name"])
    ctl = doc.get("controller")
    if isinstance(ctl, dict) and ctl.get("name"):
        names.add(ctl["name"])
    return {n.encode() for n in names if len(n.encode()) >= GLOBAL_MIN}


@dataclass
class TsharkView:
    malformed: set[int] = field(default_factory=set)  # frame numbers
    bad_crc: set[int] = field(default_factory=set)  # frames failing their LE CRC
    keys: set[bytes] = field(default_factory=set)
    #: addresses read only from malformed frames or LE packets failing their CRC (noise)
    noise: set[bytes] = field(default_factory=set)


def as_tshark_reads(path: Path) -> TsharkView:
    """What tshark reads in ``path`` (see :class:`TsharkView`)."""
    display = " || ".join(("_ws.malformed", "btle.crc.incorrect", *LL_ADDRESSES, *KEY_FIELDS))
    fields = ["frame.number", "_ws.malformed", "btle.crc.incorrect", *SNIFFER_CRC, *LL_ADDRESSES]
    fields += KEY_FIELDS
    view = TsharkView()
    good: set[bytes] = set()
    bad: set[bytes] = set()
    n_addr = len(LL_ADDRESSES)
    for cols in tshark_where(path, display, *fields, occurrence="a"):
        if len(cols) < len(fields) or not cols[0]:
            continue
        if cols[1]:
            view.malformed.add(int(cols[0]))
        if cols[2]:
            view.bad_crc.add(int(cols[0]))
        crcok, checked, valid = (c.lower() in ("1", "true") for c in cols[3:6])
        noise = bool(cols[1] or cols[2]) or (cols[3] != "" and not crcok) or (checked and not valid)
        for col in cols[6 : 6 + n_addr]:
            for v in filter(None, col.split(",")):
                (bad if noise else good).add(bytes.fromhex(v.replace(":", ""))[::-1])
        for col in cols[6 + n_addr :]:
            for v in col.split(","):
                raw = bytes.fromhex(v.replace(":", "")) if v else b""
                if len(raw) >= 16 and any(raw):
                    view.keys.add(raw)
    view.noise = bad - good
    return view


def forms(wire: bytes) -> list[bytes]:
    """The ways an address can sit in a file: both byte orders, text in both cases."""
    text = ":".join(f"{b:02X}" for b in wire[::-1]).encode()
    return [wire, wire[::-1], text, text.lower()]


def findings(analysis: Analysis) -> Counter[tuple[str, int]]:
    return Counter((f.id, f.count) for f in analysis.findings)


@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_scrubbed_capture_keeps_the_diagnosis_and_no_secret(path: Path, tmp_path: Path) -> None:
    need_tshark()
    cap = load(path)
    original = analysis_of(path)
    assert isinstance(original, Analysis), original
    result = scrub(cap, seed="acceptance")
    out = tmp_path / ("scrubbed" + ("" if not result.rewritten else f".{result.format}"))
    out.write_bytes(result.data)
    if result.rewritten:  # the reference is the same log converted without scrubbing
        ref = tmp_path / f"reference.{result.format}"
        sink = io.BytesIO()
        write(cap, sink, choose_format(cap))
        ref.write_bytes(sink.getvalue())
    else:
        ref = path
    ref_bytes = ref.read_bytes()
    data = result.data

    # same diagnosis
    again = analyze_capture(load(out))
    assert findings(again) == findings(original)
    assert len(again.devices) == len(original.devices)

    # tshark: no new malformed frame, as many CRC failures as before
    before, after = as_tshark_reads(ref), as_tshark_reads(out)
    new = sorted(after.malformed - before.malformed)
    assert not new, f"new malformed frames: {new[:10]}"
    # CRCs stay right (or wrong) where tshark got as far as the CRC in both files
    assert after.bad_crc - before.bad_crc <= before.malformed
    assert before.bad_crc - after.bad_crc <= after.malformed
    assert not after.keys, "tshark still reads non-zero keys"

    # no original left: the analysis of the scrubbed capture names none of the devices
    addresses = original_addresses(original)
    assert not addresses & original_addresses(again)

    # no original left
    left: list[str] = []
    present = 0
    for key in before.keys:
        assert key in ref_bytes or key[::-1] in ref_bytes  # tshark's key is in the file
        if key in data or key[::-1] in data:
            left.append(f"key {key.hex()}")
    for wire in addresses - before.noise:  # noise may be any bytes: not searched everywhere
        present += any(f in ref_bytes for f in forms(wire))
        left += [f"address {wire[::-1].hex(':')}" for f in forms(wire) if f in data]
    for name in original_names(original):
        present += name in ref_bytes
        if name in data:
            left.append(f"name {name!r}")
    assert not left, left
    if original.devices or original.discovered:
        assert present, "the originals were looked for in the wrong place"
