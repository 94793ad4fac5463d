"""The corpus the tests run on: the shared corpus's listing (tests/shared_corpus.txt) is what is
in ../shared/captures, so that its tests are the same whether it is on this machine or not (where
it is missing they show as skips with the reason, not as fewer tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import (
    SHARED_CAPTURES,
    SHARED_LISTING,
    container_format,
    shared_captures,
)


def test_listing_matches_the_shared_directory(shared_dir: Path) -> None:
    on_disk = {
        p.name: container_format(p)
        for p in shared_dir.iterdir()
        if p.is_file() and p.suffix != ".md"
    }
    assert on_disk == SHARED_LISTING, "update tests/shared_corpus.txt"


def test_formats_select_from_the_listing() -> None:
    names = {p.name for p in shared_captures("pcap", "pcapng")}
    assert names == {n for n, f in SHARED_LISTING.items() if f in ("pcap", "pcapng")}
    assert names and names < {p.name for p in shared_captures()}
    assert all(p.parent == SHARED_CAPTURES for p in shared_captures("btsnoop"))


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"btsnoop\x00\x00\x00\x00\x01", "btsnoop"),
        (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", "pcap"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00", "pcapng"),
        (b"\x00\x00\x00\x10\x4c\x80\xef\x76", "other"),
    ],
)
def test_container_format(tmp_path: Path, head: bytes, fmt: str) -> None:
    (tmp_path / "f").write_bytes(head)
    assert container_format(tmp_path / "f") == fmt
