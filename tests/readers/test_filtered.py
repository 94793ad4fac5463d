"""Filtered snoop detection (issue 3 §3; DOMAIN.md "Android's file set")."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from analyzer.readers import load
from analyzer.readers.filtered import detect
from tests.conftest import SHARED_CAPTURES, shared_captures

ROBOT = SHARED_CAPTURES / "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered"
TWO_M = [p for p in shared_captures() if p.name.startswith("2m_")]


def _need(p: Path) -> Path:
    if not p.is_file():
        pytest.skip(f"{p.name} not present")
    return p


def test_robotdrink_is_filtered() -> None:
    cap = load(_need(ROBOT))
    assert cap.meta.filtered
    assert any("filtered" in w for w in cap.warnings)


def test_robotdrink_is_filtered_by_content_too(tmp_path: Path) -> None:
    renamed = tmp_path / "capture.log"
    shutil.copy(_need(ROBOT), renamed)
    cap = load(renamed)
    assert cap.meta.filtered
    # its cut ACL records: 9 bytes with the H4 byte, original longer (read independently)
    b = renamed.read_bytes()
    off, cut9 = 16, 0
    while off + 24 <= len(b):
        orig, incl, *_ = struct.unpack_from(">IIIIq", b, off)
        cut9 += incl == 9 and orig > incl and b[off + 24] == 2
        off += 24 + incl
    assert cut9 >= 3
    assert str(cut9) in (detect(cap) or "")


@pytest.mark.parametrize("path", TWO_M, ids=lambda p: p.name[:30])
def test_2m_logs_are_not_filtered(path: Path) -> None:
    assert not load(path).meta.filtered


def test_prohibited_payloads(tmp_path: Path) -> None:
    """An ACL whose payload was replaced by PROHIBITED marks the capture filtered."""
    acl = b"\x02\x01\x20" + struct.pack("<H", 14) + struct.pack("<HH", 10, 0x40) + b"PROHIBITED"
    rec = struct.pack(">IIIIq", len(acl), len(acl), 1, 0, 0x00E03AB44A676000) + acl
    p = tmp_path / "btsnoop_hci.log"
    p.write_bytes(b"btsnoop\x00\x00\x00\x00\x01\x00\x00\x03\xea" + rec)
    cap = load(p)
    assert cap.meta.filtered
    p.write_bytes(p.read_bytes().replace(b"PROHIBITED", b"ALLOWED!!!"))
    assert not load(p).meta.filtered


def test_btsnooz_is_not_filtered() -> None:
    cap = load(_need(SHARED_CAPTURES / "sardark1_data-1_btsnooz_hci.log"))
    assert not cap.meta.filtered
