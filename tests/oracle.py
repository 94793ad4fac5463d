"""The tshark oracle: the one module of the tests that runs tshark.

Every differential test asks tshark through these helpers (a test in tests/test_quality.py
checks that no other test module starts tshark itself). Without tshark on PATH every helper
skips the calling test with the reason.

- :func:`tshark_fields`: ``-T fields`` rows, one list of values per frame;
- :func:`tshark_where`: the same for a display filter, with the PPI user-DLT setting that lets
  tshark read Bluetooth LE air captures wrapped in DLT 147;
- :func:`tshark_frames`: (time in µs, raw frame bytes) per frame; :func:`tshark_us` reads
  tshark's ``frame.time_epoch``;
- :func:`tshark_packets`: the dissection tree of each matching packet, flattened field → values;
- :func:`tshark_pdml`: the PDML text (when a field's display name is what is compared).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

#: tshark on this machine (None: every oracle test skips)
TSHARK = shutil.which("tshark")
#: User DLT 0 (147) dissected as btle: the LE sniffer captures wrapped in PPI need it
PPI_USER_DLT = 'uat:user_dlts:"User 0 (DLT=147)","btle","0","","0",""'

#: a packet's fields: name → every value it takes in the packet, in dissection order
Flat = dict[str, list[Any]]


def need_tshark() -> str:
    """tshark's path; the calling test is skipped when it is not installed."""
    if TSHARK is None:
        pytest.skip("tshark not installed")
    return TSHARK


def run_tshark(path: Path, *args: str, timeout: float = 300) -> str:
    """tshark's standard output for ``tshark -n -r path *args``.

    A complaint about the file (cut short, damaged, not a capture) is tshark's reading of it and
    is left to the test (tshark prints every frame it could read first); any other failure (a
    display filter or field this tshark does not know) fails the test, so that a wrong question
    cannot pass as an empty answer."""
    out = subprocess.run(
        [need_tshark(), "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0 and 'The file "' not in out.stderr:
        pytest.fail(f"tshark {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout


def tshark_fields(
    path: Path, fields: list[str], *extra: str, occurrence: str = "f"
) -> list[list[str]]:
    """``-T fields``: one list of values per frame (``occurrence`` "f": the first value of a
    repeated field, "a": all of them, comma-separated); ``extra`` goes before the fields."""
    args = ["-T", "fields", "-E", f"occurrence={occurrence}", "-E", "separator=\t", *extra]
    for f in fields:
        args += ["-e", f]
    return [line.split("\t") for line in run_tshark(path, *args).splitlines()]


def tshark_where(path: Path, display: str, *fields: str, occurrence: str = "f") -> list[list[str]]:
    """``fields`` per frame matching the display filter (LE air captures in PPI read as btle)."""
    return tshark_fields(
        path, list(fields), "-o", PPI_USER_DLT, "-Y", display, occurrence=occurrence
    )


def tshark_frames(path: Path) -> list[tuple[int, bytes]]:
    """(time in µs, raw frame bytes) per frame, as tshark reads ``path``."""
    frames = []
    for line in run_tshark(path, "-T", "ek", "-x").splitlines():
        if '"layers"' not in line:
            continue
        layers = json.loads(line)["layers"]
        secs, frac = layers["frame"]["frame_frame_time_epoch"].split(".")
        t = int(secs) * 1_000_000 + int(frac[:6].ljust(6, "0"))
        frames.append((t, bytes.fromhex(layers.get("frame_raw", ""))))
    return frames


def tshark_us(text: str) -> int:
    """tshark frame.time_epoch -> Unix µs. tshark prints seconds '.' nanoseconds as %09d, so a
    file whose fraction field is >= 1 s (old Ubertooth) prints more than 9 digits, and a
    negative fraction prints as '-seconds.fraction'."""
    neg = text.startswith("-")
    sec, _, frac = text.lstrip("-").partition(".")
    ns = int(frac.ljust(9, "0")) if frac else 0
    if neg:  # seconds >= 0 with a negative fraction (no capture here predates 1970)
        return int(sec) * 1_000_000 - ns // 1000
    return int(sec) * 1_000_000 + ns // 1000


def _flatten(pairs: list[tuple[str, Any]], out: Flat) -> None:
    for k, v in pairs:
        if isinstance(v, list) and v and isinstance(v[0], tuple):
            _flatten(v, out)
        else:
            out.setdefault(k, []).append(v)


@cache
def tshark_packets(path: Path, display: str) -> tuple[Flat, ...]:
    """Each packet matching ``display`` as ``-T json -x`` dissects it, its tree flattened (a
    protocol's raw bytes are under ``<proto>_raw``; repeated fields keep every value)."""
    text = run_tshark(path, "-Y", display, "-T", "json", "-x")
    if not text.strip():
        return ()
    out: list[Flat] = []
    for pkt in json.loads(text, object_pairs_hook=list):
        src = dict(dict(pkt)["_source"])
        flat: Flat = {}
        _flatten(src["layers"], flat)
        out.append(flat)
    return tuple(out)


def tshark_pdml(path: Path, display: str) -> str:
    """The PDML of the frames matching ``display`` (LE air captures in PPI read as btle)."""
    return run_tshark(path, "-o", PPI_USER_DLT, "-Y", display, "-T", "pdml")
