"""Fuzz every reader, every decoder and whole analyses (issue 18 §1).

``python -m benchmarks.fuzz --minutes N [--seed S] [--out DIR]`` runs for N minutes and prints
inputs, inputs/s, escaping exceptions, hangs (> :data:`HANG_S` s), memory blow-ups (the peak RSS
growing by more than :data:`MEMORY_FACTOR` × the input + :data:`MEMORY_SLACK_MB`), rule crashes
caught inside the analysis, per-target counts and times, and peak RSS; every failing input is
written to ``DIR`` (default: a temporary folder) for reproduction. Exit status 1 when anything
escaped, hung or blew up memory. The test suite runs it briefly (``tests/test_fuzz.py``).

Inputs: the real corpus (``../shared/captures``, ``captures/real``) and the scenario captures,
cut to :data:`SEED_BYTES`, mutated (bytes flipped, chunks cut, duplicated, spliced between seeds,
32-bit fields set to hostile values, gzip/zip wrapped); and structure-aware hostile captures
(valid framing, hostile payloads): lengths that lie at the HCI and L2CAP layers, one L2CAP PDU
reassembled from thousands of fragments, deeply nested SDP data elements with continuations,
huge AVDTP capability lengths, timestamps jumping a century, many connections on one handle,
many advertisers, resets among unanswered commands, L2CAP channels with hostile CIDs and results.
Decoders get the payloads of every input plus AT streams without CR.

Targets: ``read_source`` (must return or raise CaptureError), each decoder (must return), and
``analyze_capture`` on every :data:`ANALYZE_EVERY`-th readable input (must return; a rule that
crashed inside it is counted apart, as ``rule_crashes``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from analyzer.analysis import analyze_capture
from analyzer.capture import Capture, CaptureError
from analyzer.decode import a2dp, at, att, avdtp, hci, l2cap, le_adv, le_ll, rfcomm, sdp, smp
from analyzer.readers import Source, read_source

REPO = Path(__file__).resolve().parents[1]
SEED_DIRS = [
    REPO / ".." / "shared" / "captures",
    REPO / "captures" / "real",
    REPO / "captures" / "scenarios",
]
SEED_BYTES = 48 * 1024
#: a hang: more than this much CPU time on one input (CPU, not wall-clock time: on a loaded
#: machine a niced run waits for the CPU; a wall-clock backstop of WALL_HANG_S catches the rest)
HANG_S = 10.0
WALL_HANG_S = 120.0
#: a memory blow-up: the peak RSS grows by more than this × the input size + the slack
MEMORY_FACTOR, MEMORY_SLACK_MB = 10, 200
ANALYZE_EVERY = 25
PAYLOADS_PER_INPUT = 24
HOSTILE_U32 = (
    0,
    1,
    3,
    4,
    11,
    12,
    0x7F,
    0xFF,
    0xFFFF,
    0x10000,
    2**31 - 1,
    2**31,
    2**32 - 16,
    2**32 - 1,
)
TS0 = 0x00E0_0000_0000_0000


class Hang(Exception):
    pass


def _alarm(_sig: int, _frame: Any) -> None:
    raise Hang


def load_seeds() -> list[bytes]:
    seeds = []
    for d in SEED_DIRS:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix != ".json":
                seeds.append(p.read_bytes()[:SEED_BYTES])
    return seeds


# ------------------------------------------------------------------------------------------------
# structure-aware hostile captures (btsnoop 1002)


def btsnoop(packets: list[tuple[int, bytes, bool]]) -> bytes:
    """(time µs from TS0, H4 packet, received) → a btsnoop 1002 file."""
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002))
    for t, pkt, rx in packets:
        flags = (1 if rx else 0) | (2 if pkt[0] in (1, 4) else 0)
        out += struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, TS0 + t) + pkt
    return bytes(out)


def conn_complete(handle: int, addr: bytes = b"\x11\x22\x33\x44\x55\x66") -> bytes:
    return b"\x04\x03\x0b\x00" + struct.pack("<H", handle) + addr + b"\x01\x00"


def disconn_complete(handle: int) -> bytes:
    return b"\x04\x05\x04\x00" + struct.pack("<H", handle) + b"\x13"


def acl(handle: int, payload: bytes, pb: int = 2, length: int | None = None) -> bytes:
    ln = len(payload) if length is None else length
    return b"\x02" + struct.pack("<HH", handle | pb << 12, ln & 0xFFFF) + payload


def l2(cid: int, payload: bytes, length: int | None = None) -> bytes:
    return struct.pack("<HH", (len(payload) if length is None else length) & 0xFFFF, cid) + payload


def channel(psm: int, scid: int, dcid: int) -> list[tuple[int, bytes, bool]]:
    req = l2(1, struct.pack("<BBHHH", 2, 1, 4, psm, scid))
    rsp = l2(1, struct.pack("<BBHHHHH", 3, 1, 8, dcid, scid, 0, 0))
    return [(10, acl(1, req), False), (20, acl(1, rsp), True)]


def _size(r: random.Random, usual: tuple[int, ...], rare: tuple[int, ...]) -> int:
    """A repetition count: mostly small (many inputs per second), one time in ten large (the
    scaling itself is tested in tests/test_scaling.py)."""
    return r.choice(rare if r.random() < 0.1 else usual)


def gen_fragments(r: random.Random) -> bytes:
    n = _size(r, (500, 4000), (20000,))
    pk = [(0, conn_complete(1), True)]
    pk += [(1, acl(1, l2(0x40, b"\x00" * 10, length=0xFFFF)), True)]
    pk += [(2 + i, acl(1, bytes(r.randrange(256) for _ in range(3)), pb=1), True) for i in range(n)]
    return btsnoop(pk)


def _nested(depth: int) -> bytes:
    e = b"\x09\x00\x01"
    for _ in range(depth):
        e = b"\x36" + struct.pack(">H", len(e)) + e
    return e


def gen_sdp(r: random.Random) -> bytes:
    pk = [(0, conn_complete(1), True), *channel(1, 0x40, 0x41)]
    t = 30
    body = _nested(r.choice((5, 40, 3000))) if r.random() < 0.5 else b"\x35\xff" + b"\x00" * 40
    for i in range(_size(r, (1, 50), (2000,))):
        req = b"\x06" + struct.pack(">HH", i, 8) + b"\x35\x03\x19\x11\x0b\x00\x10\x00"
        cont = b"\x02\x00\x01" if i < 1999 else b"\x00"
        chunk = body if i == 0 else bytes(r.randrange(256) for _ in range(16))
        head = struct.pack(">HHH", i, len(chunk) + 2 + len(cont), len(chunk))
        rsp = b"\x07" + head + chunk + cont
        pk += [(t, acl(1, l2(0x41, req)), False), (t + 1, acl(1, l2(0x40, rsp)), True)]
        t += 2
    return btsnoop(pk)


def gen_avdtp(r: random.Random) -> bytes:
    pk = [(0, conn_complete(1), True), *channel(0x19, 0x40, 0x41)]
    caps = b"".join(
        bytes([r.randrange(1, 9), r.choice((0, 1, 255))]) + b"\xff" * r.randrange(0, 8)
        for _ in range(60)
    )
    for i in range(200):
        pk += [
            (30 + 2 * i, acl(1, l2(0x41, bytes([(i & 15) << 4, 0x02, 0x04]))), False),
            (31 + 2 * i, acl(1, l2(0x40, bytes([(i & 15) << 4 | 2, 0x02]) + caps)), True),
        ]
    return btsnoop(pk)


def gen_lying(r: random.Random) -> bytes:
    pk = [(0, conn_complete(1), True)]
    for i in range(300):
        body = bytes(r.randrange(256) for _ in range(r.randrange(0, 40)))
        kind = r.randrange(4)
        if kind == 0:
            pkt = acl(1, l2(r.choice((1, 3, 4, 5, 6, 0x40)), body, r.choice(HOSTILE_U32)))
        elif kind == 1:
            pkt = acl(1, body, pb=r.randrange(4), length=r.choice(HOSTILE_U32))
        elif kind == 2:
            pkt = b"\x04" + bytes([r.randrange(256), r.randrange(256)]) + body
        else:
            pkt = b"\x01" + bytes([r.randrange(256), r.randrange(256), r.randrange(256)]) + body
        pk.append((i * 100, pkt, kind != 3))
    return btsnoop(pk)


def gen_time_jumps(r: random.Random) -> bytes:
    century = 100 * 365 * 86400 * 1_000_000
    pk = []
    for i in range(400):
        t = i * 1000 + (century * r.choice((-1, 0, 1, 30)) if r.random() < 0.1 else 0)
        pk.append((t, conn_complete(i % 3) if i % 2 else disconn_complete(i % 3), True))
    return btsnoop(pk)


def gen_connections(r: random.Random) -> bytes:
    n = _size(r, (100, 1000), (5000,))
    pk = []
    for i in range(n):
        pk.append((3 * i, conn_complete(1, struct.pack("<I", i) + b"\x00\x00"), True))
        pk.append((3 * i + 1, acl(1, l2(1, struct.pack("<BBHHH", 2, 1, 4, 0x19, 0x40))), False))
        pk.append((3 * i + 2, disconn_complete(1), True))
    return btsnoop(pk)


def gen_advertisers(r: random.Random) -> bytes:
    n = _size(r, (100, 2000), (10000,))
    pk = []
    for i in range(n):
        rep = b"\x01\x00\x00" + struct.pack("<I", i) + b"\x00\x00\x03\x02\x01\x06\xc0"
        pk.append((i, b"\x04\x3e" + bytes([len(rep) + 1, 2]) + rep, True))
    return btsnoop(pk)


def gen_resets(r: random.Random) -> bytes:
    """HCI Resets between links and commands that are never answered (controller_reset,
    the pending-command tables)."""
    pk = []
    for i in range(_size(r, (100, 1000), (5000,))):
        pk.append((4 * i, conn_complete(r.randrange(1, 8)), True))
        pk.append((4 * i + 1, b"\x01\x03\x0c\x00", False))
        op = r.choice((0x0405, 0x0411, 0x0419, 0x0C1A, r.randrange(0x10000)))
        pk.append((4 * i + 2, b"\x01" + struct.pack("<HB", op, 2) + b"\x01\x00", False))
        if r.random() < 0.5:
            pk.append((4 * i + 3, b"\x04\x0f\x04\x00\x01" + struct.pack("<H", op), True))
    return btsnoop(pk)


def gen_channels(r: random.Random) -> bytes:
    """L2CAP channels opened, refused and closed with hostile CIDs and results, on links that
    end or are replaced on their handle."""
    pk: list[tuple[int, bytes, bool]] = []
    t = 0
    for i in range(_size(r, (100, 1000), (5000,))):
        h = r.randrange(1, 4)
        if r.random() < 0.1:
            pk.append((t, conn_complete(h), True))
        scid, dcid = r.choice((0, 1, 0x40, 0xFFFF, r.randrange(0x10000))), r.randrange(0x10000)
        psm = r.choice((1, 3, 0x19, 0x17, r.randrange(0x10000)))
        req = l2(1, struct.pack("<BBHHH", 2, i & 0xFF, 4, psm, scid))
        res = r.choice((0, 0, 1, 2, 3, 4, 0xFFFF))
        rsp = l2(1, struct.pack("<BBHHHHH", 3, i & 0xFF, 8, dcid, scid, res, 0))
        pk += [(t + 1, acl(h, req), r.random() < 0.5), (t + 2, acl(h, rsp), r.random() < 0.5)]
        if r.random() < 0.3:
            pk.append((t + 3, acl(h, l2(1, struct.pack("<BBHHH", 6, 1, 4, dcid, scid))), False))
        if r.random() < 0.05:
            pk.append((t + 4, disconn_complete(h), True))
        t += 5
    return btsnoop(pk)


GENERATORS: list[Callable[[random.Random], bytes]] = [
    gen_fragments, gen_sdp, gen_avdtp, gen_lying, gen_time_jumps, gen_connections, gen_advertisers,
    gen_resets, gen_channels,
]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# mutation


def mutate(data: bytes, seeds: list[bytes], r: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(r.choice((1, 1, 2, 4, 16))):
        if not b:
            b += r.choice(seeds)[:64]
        op = r.randrange(8)
        pos = r.randrange(len(b))
        if op == 0:
            b[pos] = r.randrange(256)
        elif op == 1 and pos + 4 <= len(b):
            b[pos : pos + 4] = r.choice(HOSTILE_U32).to_bytes(4, r.choice(("big", "little")))
        elif op == 2:
            del b[pos : pos + r.randrange(1, 256)]
        elif op == 3:
            chunk = b[pos : pos + r.randrange(1, 512)]
            b[pos:pos] = chunk * r.randrange(1, 8)
        elif op == 4:
            other = r.choice(seeds)
            b[pos:] = other[r.randrange(len(other) or 1) :]
        elif op == 5:
            del b[pos:]
        elif op == 6:
            b[pos:pos] = bytes(r.choice((0, 0xFF))) * r.randrange(1, 200)
        else:
            b[pos:pos] = r.choice(seeds)[:16]  # a file header in the middle
    out = bytes(b)
    wrap = r.random()
    if wrap < 0.03:
        return gzip.compress(out, 1)[: r.randrange(10, 11 + len(out))]  # often truncated
    if wrap < 0.05:
        z = io.BytesIO()
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(r.choice(("btsnoop_hci.log", "../x.log", "a\n\x1b[1m.log")), out)
        return z.getvalue()
    return out


# ------------------------------------------------------------------------------------------------
# targets


def decode_all(payloads: list[bytes]) -> None:
    for p in payloads:
        hci.decode_command(p)
        hci.decode_event(p)
        hci.decode_acl(p)
        l2cap.decode_l2cap(p)
        l2cap.decode_signalling(p)
        l2cap.decode_signalling(p, le=True)
        sdp.decode_sdp(p)
        sdp.parse_attribute_lists(p)
        sdp.parse_attribute_list(p)
        avdtp.decode_avdtp(p)
        avdtp.decode_capabilities(p)
        a2dp.decode_codec(p)
        att.decode_att(p)
        smp.decode_smp(p)
        le_adv.decode_ad(p)
        le_ll.decode_adv_pdu(p)
        le_ll.decode_data_pdu(p)
        rfcomm.decode_rfcomm(p)
        rfcomm.decode_rfcomm(p, credit_based=False)
        rfcomm.decode_mcc(p)
        for line in at.split_lines(p):
            at.parse_line(line)
    sp = at.LineSplitter()
    for p in payloads:
        sp.feed(p)


def payloads_of(cap: Capture, r: random.Random) -> list[bytes]:
    n = len(cap)
    if not n:
        return []
    rows = [r.randrange(n) for _ in range(min(n, PAYLOADS_PER_INPUT))]
    return [cap.payload(i + 1) for i in rows]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs(seeds: list[bytes], r: random.Random) -> Iterator[tuple[str, bytes]]:
    while True:
        x = r.random()
        if x < 0.15:
            gen = r.choice(GENERATORS)
            data = gen(r)
            yield gen.__name__, mutate(data, seeds, r) if r.random() < 0.3 else data
        elif x < 0.2:
            yield "random", bytes(r.randrange(256) for _ in range(r.randrange(0, 300)))
        else:
            yield "mutated", mutate(r.choice(seeds), seeds, r)


def run(
    seconds: float, seed: int = 0, out: Path | None = None, log: bool = False
) -> dict[str, Any]:
    """Fuzz for ``seconds``; returns the report (``exceptions``/``hangs`` list failing cases)."""
    r = random.Random(seed)
    seeds = load_seeds()
    if not seeds:
        raise SystemExit("no seed captures found")
    report: dict[str, Any] = {
        "inputs": 0, "analyzed": 0, "readable": 0, "exceptions": [], "hangs": [], "memory": [],
        "rule_crashes": Counter(), "by_source": Counter(), "decoded_payloads": 0,
        "cpu_seconds_by_target": Counter(),
    }  # fmt: skip
    old = signal.signal(signal.SIGALRM, _alarm)
    old_prof = signal.signal(signal.SIGPROF, _alarm)
    t0 = time.monotonic()
    slowest = (0.0, "")
    try:
        for source, data in inputs(seeds, r):
            if time.monotonic() - t0 >= seconds:
                break
            report["inputs"] += 1
            report["by_source"][source] += 1
            stage = "read"
            start = time.process_time()
            peak_before = rss_mb()
            cpu0 = time.process_time()
            signal.setitimer(signal.ITIMER_PROF, HANG_S)
            signal.setitimer(signal.ITIMER_REAL, WALL_HANG_S)
            try:
                try:
                    cap = read_source(Source(buffer=data, path="fuzz", size=len(data)))
                except CaptureError:
                    cap = None
                lap = _lap(report, "read", start)
                if cap is not None:
                    report["readable"] += 1
                    stage = "decode"
                    pls = payloads_of(cap, r)
                    decode_all(pls)
                    report["decoded_payloads"] += len(pls)
                    lap = _lap(report, "decode", lap)
                    if report["inputs"] % ANALYZE_EVERY == 0 or (
                        source.startswith("gen_") and report["inputs"] % 3 == 0
                    ):
                        stage = "analyze"
                        analysis = analyze_capture(cap)
                        analysis.to_json()
                        report["analyzed"] += 1
                        _lap(report, "analyze", lap)
                        for a in analysis.anomalies:
                            if a.layer == "rules":
                                report["rule_crashes"][a.message[:160]] += 1
            except Hang:
                what = f"hang: {time.process_time() - cpu0:.1f} s CPU in {stage}"
                report["hangs"].append(_save(out, data, source, stage, what))
            except Exception as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                what = f"{stage}: {type(exc).__name__}: {exc} at {where.filename}:{where.lineno}"
                report["exceptions"].append(_save(out, data, source, stage, what[:300]))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.setitimer(signal.ITIMER_PROF, 0)
            took = time.process_time() - cpu0
            grew = rss_mb() - peak_before
            if grew > MEMORY_FACTOR * len(data) / 2**20 + MEMORY_SLACK_MB:
                what = f"{stage}: peak RSS grew {grew:.0f} MB on {len(data)} bytes"
                report["memory"].append(_save(out, data, source, stage, what))
            if took > slowest[0]:
                slowest = (took, f"{source} ({len(data)} bytes)")
            if log and report["inputs"] % 1000 == 0:
                print(
                    f"{report['inputs']} inputs ({report['analyzed']} analysed), "
                    f"{len(report['exceptions'])} exceptions, {len(report['hangs'])} hangs, "
                    f"{len(report['memory'])} memory, peak {rss_mb():.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        signal.signal(signal.SIGALRM, old)
        signal.signal(signal.SIGPROF, old_prof)
    elapsed = time.monotonic() - t0
    report.update(
        seconds=round(elapsed, 1),
        inputs_per_s=round(report["inputs"] / elapsed, 1) if elapsed else 0,
        peak_rss_mb=round(rss_mb()),
        slowest_input_cpu_s=round(slowest[0], 2),
        slowest_input=slowest[1],
        rule_crashes=dict(report["rule_crashes"]),
        by_source=dict(report["by_source"]),
        cpu_seconds_by_target={k: round(v, 1) for k, v in report["cpu_seconds_by_target"].items()},
    )
    return report


def _lap(report: dict[str, Any], target: str, since: float) -> float:
    now = time.process_time()
    report["cpu_seconds_by_target"][target] += now - since
    return now


def _save(out: Path | None, data: bytes, source: str, stage: str, what: str) -> dict[str, str]:
    item = {"source": source, "stage": stage, "what": what}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"case-{len(list(out.glob('case-*.bin'))):05}.bin"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(f"{source} {stage}: {what}\n")
        item["file"] = str(path)
    return item


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=None, help="where failing inputs are written")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="btanalyze-fuzz-"))
    rep = run(args.minutes * 60, args.seed, out, log=True)
    rep["seed"] = args.seed
    rep["failing_inputs_dir"] = str(out)
    print(json.dumps(rep, indent=2, default=str))
    return 1 if rep["exceptions"] or rep["hangs"] or rep["memory"] else 0


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    raise SystemExit(main())
