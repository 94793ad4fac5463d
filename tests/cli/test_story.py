"""The per-device story of the text and Markdown reports (issue 16) and the OUI vendor beside
the chip vendor: the story of a real capture names its steps in order with wall-clock times and
frames, collapses repeats, is limited by --device, renders as a Markdown table; an address's
OUI vendor shows for a public address and never for an LE random one."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from analyzer.model import Analysis
from analyzer.model.story import device_story, story_devices
from analyzer.report import clock, markdown_report, print_report
from tests.conftest import analysis_of, shared_capture

REPO = Path(__file__).resolve().parents[2]
OPPO = REPO / "captures" / "real" / "Swastik36_OPPO-Earbuds_btsnoop_205240.log"
BUDS = REPO / "captures" / "real" / "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
SCENARIOS = REPO / "captures" / "scenarios"


def _analysis(path: Path) -> Analysis:
    a = analysis_of(path)
    assert isinstance(a, Analysis), a
    return a


def _text(a: Analysis, width: int = 1000) -> str:
    buf = io.StringIO()
    print_report(a, Console(file=buf, width=width, color_system=None))
    return buf.getvalue()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, check=False,
                          timeout=120)  # fmt: skip


def _story_block(out: str, label: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index(f"Device {label}")
    block = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        block.append(line)
    return block


def test_story_of_a_real_headset_capture_tells_the_steps_in_order() -> None:
    """OPPO earbuds and an Android phone: paging, ACL, SDP, authentication, encryption, HFP
    SLC, the AVDTP negotiation ending in an open AAC stream, start/suspend cycles, the local
    disconnect — in that order, each with the wall-clock time and frame of the model's record."""
    a = _analysis(OPPO)
    (addr,) = story_devices(a)
    acl = next(c for c in a.connections if c.address == addr and c.transport == "br_edr")
    out = _text(a)
    block = _story_block(out, a.device_label(addr))
    steps = [
        "paging",
        f"{clock(acl.start_time_us)} +#{acl.start_frame}  ACL connected \\(local initiated\\)",
        "authentication succeeded (stored link key)",
        "encryption on",
        "HFP service level connection established",
        "AVDTP DISCOVER, GET_CAPABILITIES ×2, SET_CONFIGURATION AAC, OPEN (local) → A2DP AAC open",
        "AVDTP START (local) → A2DP AAC streaming",
        f"{clock(acl.end_time_us)} +#{acl.end_frame}  ACL disconnected: "
        f"{acl.disconnect_reason_name} \\(0x16\\)",
    ]
    at = []
    for step in steps:
        hits = [i for i, line in enumerate(block)
                if step in line or ("+#" in step and re.search(step, line))]  # fmt: skip
        assert hits, (step, block)
        at.append(hits[0])
    assert at == sorted(at), block
    # what the device is, then every line leads with a wall-clock time and a frame number
    assert block[0].startswith("  OUI vendor Jiangxi Risound") and "chip Bestechnic" in block[0]
    assert all(re.match(r"^  \d\d:\d\d:\d\d\.\d{3} +#\d+  ", x) for x in block[1:]), block
    # the SDP queries that found nothing are one line with their count and the last one's time
    empty = [s for s in a.sdp if not s.services and not s.error_name]
    last = max(empty, key=lambda s: s.response_frame or 0)
    sdp = [line for line in block if "SDP: no records" in line]
    assert len(sdp) == 1 and f"×{len(empty)}, last at" in sdp[0], sdp
    assert f"(#{last.response_frame})" in sdp[0]
    # START/SUSPEND cycles: one line with the number of cycles
    starts = [s for s in a.avdtp.signals if s.signal == "START"]
    assert any(line.find(f"{len(starts)}× until") > 0 and "SUSPEND" in line for line in block)


def test_findings_are_pinned_in_the_story_at_their_time() -> None:
    sc = SCENARIOS / "a2dp_rejected_hfp_fallback.btsnoop"
    a = _analysis(sc)
    (addr,) = story_devices(a)
    story = device_story(a, addr)
    pinned = [ln for ln in story.lines if ln.finding]
    assert {f.id for f in a.findings if f.address == addr} == {ln.finding for ln in pinned}
    for ln in pinned:
        f = next(x for x in a.findings if x.id == ln.finding)
        assert ln.time_us == f.time_us and ln.severity == f.severity
        assert ln.frame in f.frames
    times = [ln.time_us for ln in story.lines if ln.time_us is not None]
    assert times == sorted(times)
    texts = [ln.text for ln in story.lines]
    reject = next(i for i, t in enumerate(texts) if "rejected (UNSUPPORTED_CONFIGURATION)" in t)
    esco = next(i for i, t in enumerate(texts) if t.startswith("eSCO connected (mSBC"))
    fallback = next(i for i, ln in enumerate(story.lines) if ln.finding == "a2dp_fallback_hfp")
    assert reject < esco < fallback


def test_a_repeated_reconnect_cycle_is_one_line() -> None:
    """Three identical connect … remote-terminated cycles: the first told in full with the
    findings it raised, the two others as one line naming the cycle and its span."""
    a = _analysis(SCENARIOS / "periodic_disconnect.btsnoop")
    (addr,) = story_devices(a)
    story = device_story(a, addr)
    cycles = [ln for ln in story.lines if ln.cycle]
    assert len(cycles) == 1
    (cyc,) = cycles
    conns = [c for c in a.connections if c.address == addr]
    assert cyc.count == len(conns) - 1
    assert cyc.cycle[0].startswith("paging") and cyc.cycle[-1].startswith("ACL disconnected")
    assert cyc.last_frame == conns[-1].end_frame
    assert len(story.lines) < sum(1 for e in a.timeline if e.lane != "controller")
    # the findings sit at the first drop, on its Disconnection Complete frame
    drop = next(ln for ln in story.lines if ln.text.startswith("ACL disconnected"))
    pinned = [ln for ln in story.lines if ln.finding]
    assert pinned and all((ln.time_us, ln.frame) == (drop.time_us, drop.frame) for ln in pinned)


def test_a_long_story_is_cut_but_keeps_its_warnings() -> None:
    a = _analysis(BUDS)
    addr = story_devices(a)[0]
    full = device_story(a, addr, limit=1000)
    cut = device_story(a, addr, limit=10)
    assert cut.lines == full.lines[:10]
    assert cut.hidden + len(cut.tail) == len(full.lines) - 10 and cut.hidden > 0
    assert all(ln.severity != "info" for ln in cut.tail)
    assert [ln for ln in full.lines[10:] if ln.severity != "info"] == cut.tail
    out = _text(a)
    assert re.search(r"… \d+ more events, see --json", out)


def test_device_option_limits_the_story_to_that_device() -> None:
    whole = _run("analyze", str(BUDS)).stdout
    heads = [line for line in whole.splitlines() if line.startswith("Device ")]
    # by default: the devices the host connected to (the others were only found by inquiry)
    assert heads == ["Device Pixel Buds A-Series di Daniele (0C:C4:13:F7:67:95)"]
    r = _run("analyze", "--device", "OnePlus", str(BUDS))
    assert r.returncode == 0, r.stderr
    heads = [line for line in r.stdout.splitlines() if line.startswith("Device ")]
    assert heads == ["Device OnePlus 5T (94:65:2D:D3:AC:47)"]
    block = _story_block(r.stdout, "OnePlus 5T (94:65:2D:D3:AC:47)")
    assert any("found by inquiry" in line for line in block)
    assert "Pixel Buds" not in "\n".join(block)


def test_markdown_renders_the_story_as_a_table() -> None:
    a = _analysis(OPPO)
    (addr,) = story_devices(a)
    acl = next(c for c in a.connections if c.address == addr and c.transport == "br_edr")
    md = markdown_report(a)
    assert f"### Device {a.device_label(addr)}" in md
    assert "| time | frame | event |" in md
    row = f"| {clock(acl.start_time_us)} | {acl.start_frame} | ACL connected (local initiated) |"
    assert row in md
    assert "OUI vendor Jiangxi Risound Electronics" in md
    assert "None" not in md


def test_oui_vendor_for_a_public_address_and_none_for_a_random_one() -> None:
    import aiooui

    from analyzer.decode.oui import oui_vendor

    a = _analysis(OPPO)
    remote = next(d for d in a.devices if d.role == "remote")
    assert remote.oui_vendor and remote.oui_vendor == aiooui.get_vendor(remote.address)
    assert remote.oui_vendor != remote.manufacturer_name  # the product's maker, not the chip's
    out = _text(a, width=80)
    assert "Jiangxi Risound" in out and "Bestechnic" in out  # both vendors, at 80 columns
    # an LE random (static) address has no OUI, even though its top 24 bits are registered
    le = _analysis(SCENARIOS / "le_att_insufficient_authentication.btsnoop")
    dev = next(d for d in le.devices if d.role == "remote")
    assert dev.address_type == "Random" and dev.oui_vendor is None
    assert dev.random_kind == "static"
    assert "LE static random address (no OUI)" in _text(le)
    # locally administered and group addresses are not IEEE-assigned
    assert oui_vendor("02:1B:66:00:00:01") is None and oui_vendor("01:1B:66:00:00:01") is None
    assert oui_vendor("not an address") is None


def test_a_random_address_in_a_registered_block_names_no_vendor() -> None:
    """A Nest camera's LE link reports a random peer address whose top 24 bits are a
    registered OUI: no vendor is shown for it."""
    path = shared_capture("jasondoyle_Google-Nest-Cam-Bug-Disclosures_btsnoop_hci.pcap")
    import aiooui

    from analyzer.decode.oui import oui_vendor

    a = _analysis(path)
    rnd = [d for d in a.devices if d.address_type == "Random"]
    assert rnd
    oui_vendor("00:1B:66:00:00:00")  # loads the table
    assert any(aiooui.get_vendor(d.address) for d in rnd)
    assert all(d.oui_vendor is None for d in rnd)


@pytest.mark.parametrize("name", ["hfp_call_msbc.btsnoop", "le_att_insufficient_authentication"
                                  ".btsnoop", "link_loss.btsnoop"])  # fmt: skip
def test_every_story_line_has_a_time_and_no_none(name: str) -> None:
    a = _analysis(SCENARIOS / name)
    for addr in story_devices(a):
        st = device_story(a, addr)
        assert st.lines
        for ln in st.lines:
            assert ln.time_us is not None and ln.frame is not None
            assert "None" not in ln.text


def test_oui_table_is_loaded_lazily() -> None:
    """Importing the analyzer and the report does not load the OUI table; the first lookup
    does."""
    code = (
        "import sys, analyzer.cli, analyzer.report, analyzer.decode.oui as o\n"
        "assert 'aiooui' not in sys.modules, 'loaded at import'\n"
        "assert o.oui_vendor('00:1B:66:00:00:01')\n"
        "assert 'aiooui' in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       check=False, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_story_folding_scales_linearly() -> None:
    """Ten times the events take well under a hundred times as long (no quadratic folding)."""
    import random
    import time

    from analyzer.model.story import StoryLine, _avdtp_bursts, _collapse

    kinds = ["connect", "pair", "encryption", "sdp", "disconnect", "avdtp", "stream_state"]

    def run(n: int) -> float:
        rnd = random.Random(1)
        lines = [StoryLine(i * 1000, i, f"text {rnd.randint(0, 5)}", "info", rnd.choice(kinds))
                 for i in range(n)]  # fmt: skip
        t = time.perf_counter()
        _collapse(_avdtp_bursts(lines))
        return time.perf_counter() - t

    run(500)  # warm up
    small, big = min(run(2_000) for _ in range(3)), min(run(20_000) for _ in range(3))
    assert big < 40 * small, (small, big)
