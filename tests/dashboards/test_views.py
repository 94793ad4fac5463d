"""Issue 21 views without a browser: sequence charts (rejects red, missing steps as ghosts) and
the A2DP negotiation matrix, from analyses of bumble scenario captures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("dash")

from analyzer.analysis import analyze
from analyzer.dashboards import negotiation, sequences
from analyzer.diff import diff

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"


def _avdtp(name: str) -> sequences.Sequence:
    a = analyze(SC / name)
    (s,) = [s for s in sequences.sequences(a) if s.procedure == "avdtp"]
    return s


def test_rejected_configuration_is_red_and_open_start_are_ghosts() -> None:
    s = _avdtp("a2dp_rejected_hfp_fallback.btsnoop")
    rejects = [m for m in s.messages if "reject" in m.label]
    assert len(rejects) == 3 and all(m.kind == "error" for m in rejects)
    assert all(m.src == "remote" and m.dst == "host" and m.frame for m in rejects)
    assert [m.label for m in s.ghosts] == ["OPEN", "START"]
    # the ghosts come after the last rejected SET_CONFIGURATION, sent like the commands
    last_reject = max(i for i, m in enumerate(s.messages) if m.kind == "error")
    assert all(s.messages.index(g) > last_reject for g in s.ghosts)
    assert all(g.src == "host" and g.dst == "remote" and g.frame is None for g in s.ghosts)


def test_open_without_start_has_start_as_the_only_ghost() -> None:
    s = _avdtp("a2dp_open_without_start.btsnoop")
    assert [m.label for m in s.ghosts] == ["START"]
    assert not s.errors
    clean = _avdtp("a2dp_sbc_clean.btsnoop")
    assert not clean.ghosts and not clean.errors  # a whole negotiation: nothing missing


def test_unanswered_requests_get_ghost_answers_and_slc_stops_show_missing_at() -> None:
    a = analyze(SC / "requests_unanswered.btsnoop")
    by = {s.procedure: s for s in sequences.sequences(a)}
    assert any(g.label == "response" for g in by["sdp"].ghosts)
    assert any(g.label == "Connection Response" for g in by["l2cap"].ghosts)
    slc = analyze(SC / "hfp_slc_brsf_error.btsnoop")
    (h,) = [s for s in sequences.sequences(slc) if s.procedure == "hfp"]
    assert [m.label for m in h.ghosts] == ["AT+CIND=?", "AT+CIND?", "AT+CMER"]
    assert any(m.kind == "error" and "ERROR" in m.label for m in h.messages)


def test_le_smp_unanswered_and_pairing_order() -> None:
    a = analyze(SC / "le_smp_unanswered.btsnoop")
    (le,) = [s for s in sequences.sequences(a) if s.procedure == "le"]
    assert [g.label for g in le.ghosts][:1] == ["Pairing Response"]
    assert le.ghosts[0].src == "remote"
    assert le.messages[-1].label.startswith("Disconnection Complete")
    p = analyze(SC / "pairing_ssp_numeric_comparison.btsnoop")
    (pair,) = [s for s in sequences.sequences(p) if s.procedure == "pairing"]
    names = [m.label for m in pair.messages]
    order = ["Authentication Requested", "Link Key Request Negative Reply",
             "IO Capability Request Reply", "User Confirmation Request Reply",
             "Authentication Complete", "Encryption Change"]  # fmt: skip
    assert [n for n in names if n in order] == order
    assert not pair.ghosts


def test_figure_draws_errors_red_and_ghosts_dashed() -> None:
    a = analyze(SC / "a2dp_rejected_hfp_fallback.btsnoop")
    (s,) = [s for s in sequences.sequences(a) if s.procedure == "avdtp"]
    fig = sequences.figure(a, s)
    by = {tr.name: tr for tr in fig.data}
    assert by["error messages"].line.color == sequences.COLOURS["error"]
    assert by["ghost messages"].line.dash == "dash"
    labels = list(by["error labels"].text)
    assert len(labels) == 3 and all("reject" in t for t in labels)
    assert any("START" in t for t in by["ghost labels"].text)


def test_compare_highlights_the_first_divergent_step() -> None:
    good = analyze(SC / "a2dp_sbc_clean.btsnoop")
    bad = analyze(SC / "a2dp_rejected_hfp_fallback.btsnoop")
    first = diff(good, bad).first
    assert first is not None and first[1].procedure == "avdtp"
    frame = first[1].b.frame if first[1].b else None
    (s,) = [s for s in sequences.sequences(bad) if s.procedure == "avdtp"]
    fig = sequences.figure(bad, s, highlight=[frame] if frame else [])
    assert any(sh.type == "rect" for sh in fig.layout.shapes)


def test_matrix_flags_a_configuration_outside_the_offer(tmp_path: Path) -> None:
    from tests.scenarios.a2dp_config_outside_caps import generate

    a = analyze(generate(tmp_path))
    (row,) = negotiation.matrix(a)
    assert row.caps is not None and row.caps.codec == "SBC"
    assert [x.answer for x in row.answers] == ["accepted"]
    assert {c for c, _ in row.flags} == {"sampling rate", "bitpool"}
    text = " ".join(w for _, w in row.flags)
    assert "32 kHz" in text and "64" in text and "53" in text
    # the clean capture's configuration lies inside the offer
    clean = negotiation.matrix(analyze(SC / "a2dp_sbc_clean.btsnoop"))
    assert len(clean) == 3 and not any(r.flags for r in clean)
    assert [x.answer for r in clean for x in r.answers] == ["accepted"]
    rej = negotiation.matrix(analyze(SC / "a2dp_rejected_hfp_fallback.btsnoop"))
    answers = {r.seid: [(x.codec, x.answer, x.error) for x in r.answers] for r in rej}
    assert answers[3] == [("LDAC", "rejected", "UNSUPPORTED_CONFIGURATION")]


def test_check_follows_the_a2dp_rules() -> None:
    from analyzer.model import CodecParams

    caps = CodecParams("AAC", object_types=["MPEG-2 AAC LC"], sampling_frequencies=[44100],
                       channels=[1, 2], vbr=False, bitrate=320000)  # fmt: skip
    ok = CodecParams("AAC", object_types=["MPEG-2 AAC LC"], sampling_frequencies=[44100],
                     channels=[2], vbr=False, bitrate=256000)  # fmt: skip
    assert negotiation.check(caps, ok) == []
    bad = CodecParams("AAC", object_types=["MPEG-4 AAC LC"], sampling_frequencies=[48000],
                      channels=[2], vbr=True, bitrate=512000)  # fmt: skip
    cols = [c for c, _ in negotiation.check(caps, bad)]
    assert cols == ["sampling rate", "object type", "bit rate", "bit rate"]
    assert negotiation.check(caps, CodecParams("SBC"))[0][0] == "codec"


def test_compare_section_outlines_the_divergent_step_in_both_captures() -> None:
    from analyzer.dashboards.views import compare_section

    good = analyze(SC / "a2dp_sbc_clean.btsnoop")
    bad = analyze(SC / "a2dp_rejected_hfp_fallback.btsnoop")
    first = diff(good, bad).first
    assert first is not None
    dev, dv = first
    box = compare_section(good, bad, dev.address, dv.procedure,
                          dv.a.frame if dv.a else None, dv.b.frame if dv.b else None)  # fmt: skip
    graphs = [c.children[1] for c in box.children]
    assert [g.id for g in graphs] == ["compare-seq-a", "compare-seq-b"]
    for g in graphs:
        assert [sh for sh in g.figure.layout.shapes if sh.type == "rect"]  # the outlined step


def test_audio_view_rates_gaps_and_codec_marks() -> None:
    from analyzer.dashboards import audio, packets
    from analyzer.readers import load

    path = SC / "a2dp_media_stall.btsnoop"
    a = analyze(path)
    (s,) = a.avdtp.streams
    fig = audio.audio_figure(a, packets.build(load(path), a))
    (media,) = [tr for tr in fig.data if tr.name.startswith("media:")]
    width = media.x[1] - media.x[0]
    assert round(sum(media.y) * width) == s.media_packets  # every media packet binned once
    (gap,) = s.media_gaps
    # the stall's bins are empty: no packet for gap_ms
    at = (gap.time_us - a.capture.first_time_us) / 1e6
    inside = [y for x, y in zip(media.x, media.y, strict=True)
              if at + width <= x <= at + gap.gap_ms / 1000 - width]  # fmt: skip
    assert inside and not any(inside)
    assert any(sh.fillcolor == "rgba(198,40,40,0.25)" for sh in fig.layout.shapes)
    (events,) = [tr for tr in fig.data if tr.name == "events"]
    assert any("SET_CONFIGURATION SBC" in t for t in events.text)
    assert any(t.startswith("a2dp_media_stall") for t in events.text)
    # model only (the file gone): no rates, the marks stay
    bare = audio.audio_figure(a, None)
    assert not [tr for tr in bare.data if tr.name.startswith("media:")]
    assert [tr for tr in bare.data if tr.name == "events"]
    sco = analyze(SC / "a2dp_rejected_hfp_fallback.btsnoop")
    fig = audio.audio_figure(sco, packets.build(load(SC / "a2dp_rejected_hfp_fallback.btsnoop"),
                                                sco))  # fmt: skip
    (esco,) = [tr for tr in fig.data if tr.name.startswith("esco")]
    assert max(esco.y) > 50  # 7.5 ms eSCO interval: > 100 packets/s both ways
    (events,) = [tr for tr in fig.data if tr.name == "events"]
    assert any("HFP codec mSBC" in t for t in events.text)
    assert any(t.startswith("a2dp_fallback_hfp") for t in events.text)


def test_advertising_view_segments_silences_and_interval_band() -> None:
    from analyzer.dashboards import advertising, packets
    from analyzer.readers import load

    path = SC / "le_adv_silence_50.btsnoop"
    a = analyze(path)
    t = packets.build(load(path), a)
    quiet = next(x for x in a.advertisers if x.silences)
    fig = advertising.overview_figure(a, t)
    silences = [tr for tr in fig.data if tr.name == "silence" and tr.x[0] is not None]
    assert len(silences) == sum(len(x.silences) for x in a.advertisers) >= 1
    heard = [tr for tr in fig.data if tr.name == "heard"]
    assert sum(len(tr.x) for tr in heard) == t.reports().height  # every report (few: no thinning)
    assert any("scanning 50% duty" in (an.text or "") for an in fig.layout.annotations)
    detail = advertising.detail_figure(a, quiet.address, t)
    band = [sh for sh in detail.layout.shapes if sh.type == "rect"]
    assert band and band[0].x1 - band[0].x0 == 10  # the advDelay band
    (rssi,) = [tr for tr in detail.data if tr.name == "RSSI"]
    assert len(rssi.x) == quiet.reports
    assert "not a sniffer" in (advertising.scanner_note(a) or "")
    import numpy as np

    many = np.linspace(0, 100, 100_000)
    assert len(advertising.thin(many, 100.0)) <= advertising.MAX_POINTS


def test_rssi_points_keep_each_buckets_spread() -> None:
    import polars as pl

    from analyzer.dashboards.advertising import MAX_POINTS, rssi_points

    n = 200_000
    rep = pl.DataFrame({"time_s": [i / 1000 for i in range(n)],
                        "rssi": [-40 - (i % 50) for i in range(n)]})  # fmt: skip
    pts = rssi_points(rep, n / 1000)
    assert pts.height <= 2 * MAX_POINTS
    assert pts["rssi"].min() == -89 and pts["rssi"].max() == -40  # the extremes survive
    assert rssi_points(rep.head(10), 0.01).height == 10  # few reports: all of them


def test_real_stored_key_pairing_ends_in_encryption_change_without_ghosts() -> None:
    """A real phone log (shared corpus): the remote asks for the link key, the host replies, the
    link is encrypted — the chart names each step and has nothing missing."""
    from tests.conftest import SHARED_CAPTURES

    path = SHARED_CAPTURES / "NoahB10_MABIP_btsnoop_hci.log"
    if not path.exists():
        pytest.skip("shared corpus not present")
    a = analyze(path)
    (s,) = [s for s in sequences.sequences(a) if s.procedure == "pairing"]
    assert [m.label for m in s.messages] == [
        "Link Key Request", "Link Key Request Reply", "Encryption Change"]  # fmt: skip
    assert [m.src for m in s.messages] == ["controller", "host", "controller"]
    assert not s.ghosts


def test_a_failed_pairing_expects_nothing_after_the_failure() -> None:
    a = analyze(SC / "stale_bond_key_missing.btsnoop")
    pairs = [s for s in sequences.sequences(a) if s.procedure == "pairing"]
    failed = [s for s in pairs if s.errors]
    assert failed
    for s in failed:
        assert "Authentication Complete" in s.errors[0].label
        assert not s.ghosts  # no Set Connection Encryption / Encryption Change expected after it
