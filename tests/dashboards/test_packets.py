"""The packet table without a browser: every frame, filters and paging on the server, our
decode of one frame, and tshark (the oracle) on a small capture of the frame plus its context
frames agreeing with it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("dash")

from analyzer.analysis import analyze
from analyzer.dashboards import packets
from analyzer.readers import load
from tests.oracle import need_tshark

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"


def _table(name: str) -> tuple[packets.PacketTable, object]:
    a = analyze(SC / name)
    return packets.build(load(SC / name), a), a


def test_every_frame_with_its_connection_device_and_protocol() -> None:
    t, a = _table("a2dp_sbc_clean.btsnoop")
    assert t.frames == a.capture.frames  # type: ignore[attr-defined]
    df = t.df
    assert df["frame"].to_list() == list(range(1, t.frames + 1))
    media = df.filter(pl.col("protocol") == "AVDTP media")
    (stream,) = a.avdtp.streams  # type: ignore[attr-defined]
    # the media channel's frames, less the sent-side ones that are continuation fragments
    assert media.height >= stream.media_packets > 0
    assert set(media["connection"]) == {stream.connection}
    assert set(media["device"]) == {stream.address}
    sigs = df.filter(pl.col("summary").str.starts_with("AVDTP SET_CONFIGURATION"))
    assert sigs["summary"].to_list() == [
        "AVDTP SET_CONFIGURATION SBC",
        "AVDTP SET_CONFIGURATION accept",
    ]
    cmd = df.filter(pl.col("kind") == "command")
    assert cmd["summary"][0] == "Reset" and set(cmd["protocol"]) == {"HCI command"}


def test_pages_filters_and_sorting_on_the_server() -> None:
    t, _a = _table("a2dp_sbc_clean.btsnoop")
    first = packets.page(t, {"startRow": 0, "endRow": 50})
    assert first["rowCount"] == t.frames and len(first["rowData"]) == 50
    assert [r["frame"] for r in first["rowData"]] == list(range(1, 51))
    text = {"summary": {"filterType": "text", "type": "contains", "filter": "delayreport"}}
    got = packets.page(t, {"startRow": 0, "endRow": 100, "filterModel": text})
    assert got["rowCount"] == 4 and all("DELAYREPORT" in r["summary"] for r in got["rowData"])
    window = {
        "protocol": {"filterType": "text", "type": "equals", "filter": "avdtp media"},
        "time_s": {"filterType": "number", "type": "inRange", "filter": 5.0, "filterTo": 6.0},
    }
    got = packets.page(t, {"startRow": 0, "endRow": 1000, "filterModel": window})
    times = [r["time_s"] for r in got["rowData"]]
    assert got["rowCount"] == len(times) > 10 and all(5.0 <= x <= 6.0 for x in times)
    either = {
        "kind": {
            "filterType": "text",
            "operator": "OR",
            "conditions": [
                {"type": "equals", "filter": "command"},
                {"type": "equals", "filter": "event"},
            ],
        }
    }
    got = packets.page(
        t,
        {
            "startRow": 0,
            "endRow": 5,
            "filterModel": either,
            "sortModel": [{"colId": "frame", "sort": "desc"}],
        },
    )
    assert {r["kind"] for r in got["rowData"]} <= {"command", "event"}
    assert got["rowData"][0]["frame"] > got["rowData"][-1]["frame"]
    reports = packets.page(t, {"startRow": 0, "endRow": 2, "filterModel": text})
    frame = reports["rowData"][1]["frame"]
    assert packets.position(t, frame, text) == 1  # its row under the filter
    assert packets.position(t, frame, None) == frame - 1
    assert reports["rowCount"] == 4
    assert packets.nearest_frame(t, 0.0) == 1


def test_our_decode_of_one_frame() -> None:
    t, a = _table("sdp_stale_record_handle.btsnoop")
    (err,) = [x for x in a.sdp if x.error_name]  # type: ignore[attr-defined]
    layers = dict(packets.decode_frame(t, err.response_frame))
    assert layers["SDP"]["error_name"] == "Invalid Service Record Handle"  # type: ignore[index]
    assert layers["L2CAP"]["cid"] >= 0x40  # type: ignore[index,operator]
    assert packets.hex_dump(bytes(range(20))).splitlines()[1].startswith("0010  10 11 12 13")


@pytest.mark.tshark
def test_tshark_on_the_frame_and_its_context_agrees_with_our_decode() -> None:
    need_tshark()
    t, a = _table("sdp_stale_record_handle.btsnoop")
    (err,) = [x for x in a.sdp if x.error_name]  # type: ignore[attr-defined]
    got = packets.tshark_tree(t, a, err.response_frame)  # type: ignore[arg-type]
    assert got["error"] is None
    layers = got["layers"]
    # the L2CAP channel's set-up is in the context: tshark knows the PSM, so it dissects SDP
    assert layers["btl2cap"]["btl2cap.psm"] == "0x0001"
    assert int(layers["btsdp"]["btsdp.error_code"], 16) == err.error_code
    assert len(got["frames"]) < 10


@pytest.mark.tshark
def test_tshark_dissects_a_media_frame_as_sbc_with_its_context() -> None:
    need_tshark()
    t, a = _table("a2dp_sbc_clean.btsnoop")
    frame = int(t.df.filter(pl.col("protocol") == "AVDTP media")["frame"][100])
    got = packets.tshark_tree(t, a, frame)  # type: ignore[arg-type]
    assert got["error"] is None
    assert "sbc" in got["layers"]["frame"]["frame.protocols"].split(":")
    # the set-up frames (connection, channels, AVDTP negotiation), not the whole capture
    assert len(got["frames"]) <= 24 < frame


@pytest.mark.tshark
def test_media_check_flags_aac_media_on_an_sbc_stream(tmp_path: Path) -> None:
    """Negotiated SBC, streamed AAC (a bumble scenario): tshark dissects the payload as the
    configured SBC and finds no syncword; a clean SBC stream passes; AAC has no payload
    dissector in tshark 4.0, so it is not checked."""
    need_tshark()
    from tests.scenarios.a2dp_config_outside_caps import MEDIA_SCENARIO, generate

    bad = generate(tmp_path, MEDIA_SCENARIO)
    for path, layer, wrong in ((bad, "sbc", True),
                               (SC / "a2dp_sbc_clean.btsnoop", "sbc", False),
                               (SC / "a2dp_aac_clean.btsnoop", "data", False)):  # fmt: skip
        a = analyze(path)
        (s,) = a.avdtp.streams
        assert s.codec == ("AAC" if "aac" in path.name else "SBC")
        c = packets.media_check(packets.build(load(path), a), a, s.connection or "")
        assert c.layer == layer and c.error is None
        assert bool(c.problems) is wrong, c.problems
        assert c.checked is (layer != "data")
    c = packets.media_check(packets.build(load(bad), analyze(bad)), analyze(bad), "acl-0x001-1")
    assert "Unexpected syncword" in c.problems
