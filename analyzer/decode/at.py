"""AT commands and result codes as HFP 1.9 / HSP 1.2 carry them over RFCOMM (ITU-T V.250 §5,
3GPP TS 27.007).

A command line starts with ``AT`` and ends with S3 (``\\r``, V.250 §5.2.1); a result code is
framed ``\\r\\n<text>\\r\\n`` (V.250 §5.7.1). A UIH payload may carry part of a line, one line or
several, so :class:`LineSplitter` keeps the unfinished tail per direction. :func:`parse_line`
classifies one line and parses the parameters HFP needs (HFP 1.9 §4.34-§4.35).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: final result codes (V.250 §5.7.1, TS 27.007 §9.2; HFP 1.9 §4.34.1)
FINAL_RESULTS = frozenset(
    {"OK", "ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "DELAYED", "BLACKLISTED", "+CME ERROR"}
)
#: results an AG sends without a command (HFP 1.9 §4.35)
UNSOLICITED = frozenset(
    {"RING", "+CIEV", "+CLIP", "+CCWA", "+BCS", "+BSIR", "+VGS", "+VGM", "+BVRA", "+BTRH"}
)
#: HFP 1.9 §5.7 codec ids
CODECS: dict[int, str] = {1: "CVSD", 2: "mSBC", 3: "LC3-SWB"}
#: HF supported features bits (HFP 1.9 §4.34.2, AT+BRSF)
HF_FEATURES: dict[int, str] = {
    0: "ec_nr",
    1: "three_way_calling",
    2: "cli_presentation",
    3: "voice_recognition",
    4: "remote_volume_control",
    5: "enhanced_call_status",
    6: "enhanced_call_control",
    7: "codec_negotiation",
    8: "hf_indicators",
    9: "esco_s4",
    10: "enhanced_voice_recognition",
    11: "voice_recognition_text",
}
#: AG supported features bits (HFP 1.9 §4.34.2, +BRSF)
AG_FEATURES: dict[int, str] = {
    0: "three_way_calling",
    1: "ec_nr",
    2: "voice_recognition",
    3: "in_band_ring_tone",
    4: "voice_tag",
    5: "reject_call",
    6: "enhanced_call_status",
    7: "enhanced_call_control",
    8: "extended_error_codes",
    9: "codec_negotiation",
    10: "hf_indicators",
    11: "esco_s4",
    12: "enhanced_voice_recognition",
    13: "voice_recognition_text",
}

_NAME = re.compile(r"\+[A-Za-z][A-Za-z0-9]*(?: ERROR)?")
_CIND_TEST = re.compile(r'\(\s*"([^"]*)"\s*,\s*\(([^)]*)\)\s*\)')


@dataclass
class AtLine:
    """One AT command line or result code."""

    text: str
    kind: str  # "command" (HF/HS → AG) / "final" (OK, ERROR, +CME ERROR) / "result"
    name: str  # "+BRSF", "A", "D", "OK", "RING", "+CME ERROR", ...
    op: str = ""  # commands: "set" (=), "read" (?), "test" (=?), "action"; results: ""
    params: str = ""  # the raw text after "=", "?" or ": "
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def is_command(self) -> bool:
        return self.kind == "command"


def features(value: int, table: dict[int, str]) -> list[str]:
    """Names of the bits set in an HFP supported-features bitmap."""
    return [n for bit, n in table.items() if value >> bit & 1]


def _ints(s: str) -> list[int]:
    out = []
    for part in s.split(","):
        q = part.strip()
        if q.lstrip("-").isdigit():
            out.append(int(q))
    return out


def _int(s: str) -> int | None:
    v = _ints(s)
    return v[0] if v else None


def parse_line(text: str) -> AtLine:
    """Classify and parse one line (without its ``\\r``/``\\n`` framing). Never raises."""
    try:
        return _parse(text)
    except Exception as exc:  # a parser bug must not stop the analysis
        return AtLine(text, "result", "?", values={"anomaly": f"{type(exc).__name__}: {exc}"})


def _parse(text: str) -> AtLine:
    t = text.strip()
    if t[:2].upper() == "AT":
        return _command(t)
    if t.startswith("+"):
        m = _NAME.match(t)
        name = m.group(0).upper() if m else t.split(":")[0].upper()
        rest = t[len(name) :]
        params = rest[1:].strip() if rest[:1] in (":", "=") else rest.strip()
        kind = "final" if name == "+CME ERROR" else "result"
        line = AtLine(t, kind, name, params=params)
        _result_values(line)
        return line
    up = t.upper()
    if up in FINAL_RESULTS:
        return AtLine(t, "final", up)
    return AtLine(t, "result", up.split(" ")[0] if up else "")


def _command(t: str) -> AtLine:
    body = t[2:]
    if body.startswith("+") or body.startswith("&") or body.startswith("%"):
        m = re.match(r"[+&%][A-Za-z][A-Za-z0-9]*", body)
        name = m.group(0).upper() if m else body[:1]
        rest = body[len(name) :]
        if rest.startswith("=?"):
            op, params = "test", rest[2:]
        elif rest.startswith("="):
            op, params = "set", rest[1:]
        elif rest.startswith("?"):
            op, params = "read", rest[1:]
        else:
            op, params = "action", rest
    elif body[:1].upper() == "D":  # V.250 §6.3.1 dial: the rest of the line is the number
        name, op, params = "D", "action", body[1:]
    else:
        name = body[:1].upper()
        op, params = "action", body[1:]
    line = AtLine(t, "command", name, op, params.strip())
    _command_values(line)
    return line


def _command_values(line: AtLine) -> None:
    n, p, v = line.name, line.params, line.values
    if line.op == "set":
        if n in ("+BRSF", "+BCS", "+VGS", "+VGM", "+CKPD", "+NREC", "+BVRA", "+CMEE", "+CLIP"):
            x = _int(p)
            if x is not None:
                v["value"] = x
            if n == "+BRSF" and x is not None:
                v["features"] = features(x, HF_FEATURES)
        elif n in ("+BAC", "+BIA", "+BIND", "+CMER", "+CHLD"):
            v["values"] = [int(x) if x.strip().isdigit() else None for x in p.split(",")]
            if n == "+BAC":
                v["codecs"] = [CODECS.get(x, str(x)) for x in _ints(p)]
    if n == "D":
        num = p.rstrip(";").strip()
        if num.startswith(">"):
            v["memory"] = num[1:]
        else:
            v["number"] = num


def _result_values(line: AtLine) -> None:
    n, p, v = line.name, line.params, line.values
    if n == "+CIND":
        names = _CIND_TEST.findall(p)
        if names:
            v["indicators"] = [nm for nm, _r in names]
        else:
            v["values"] = _ints(p)
    elif n == "+CIEV":
        iv = _ints(p)
        if len(iv) >= 2:
            v["index"], v["value"] = iv[0], iv[1]
    elif n in ("+BRSF", "+BCS", "+VGS", "+VGM", "+BSIR", "+BVRA", "+BTRH", "+CME ERROR"):
        x = _int(p)
        if x is not None:
            v["value"] = x
            if n == "+BRSF":
                v["features"] = features(x, AG_FEATURES)
            if n == "+BCS":
                v["codec"] = CODECS.get(x, str(x))
    elif n in ("+CLIP", "+CCWA", "+CNUM", "+CLCC"):
        m = re.search(r'"([^"]*)"', p)
        if m:
            v["number"] = m.group(1)
    elif n == "+CHLD":
        v["modes"] = [x.strip() for x in p.strip("()").split(",") if x.strip()]


#: longest AT line kept (the spec's longest are a few hundred bytes); the rest of a longer
#: unterminated line is dropped, so a stream without CR costs linear time and bounded memory
MAX_LINE = 4096

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass
class LineSplitter:
    """Turns a byte stream (one direction of one DLC) into lines; keeps the unfinished tail
    (at most :data:`MAX_LINE` characters of it). Each payload is scanned once: the unfinished
    tail is not re-split on every frame."""

    _tail: list[str] = field(default_factory=list)
    _tail_len: int = 0

    def feed(self, data: bytes) -> list[str]:
        """Complete lines in ``data`` (after what was buffered). Empty lines are dropped."""
        text = data.decode("latin-1")
        parts = _EOL.split(text)
        last = parts.pop()
        if parts:  # a line ended in this payload: it starts with the buffered tail
            parts[0] = ("".join(self._tail) + parts[0][: MAX_LINE - self._tail_len])[:MAX_LINE]
            self._tail.clear()
            self._tail_len = 0
        if last and self._tail_len < MAX_LINE:
            last = last[: MAX_LINE - self._tail_len]
            self._tail.append(last)
            self._tail_len += len(last)
        return [p for p in (x.strip() for x in parts) if p]

    @property
    def pending(self) -> str:
        return "".join(self._tail)


def split_lines(data: bytes) -> list[str]:
    """All lines of one payload, a trailing unterminated line included."""
    sp = LineSplitter()
    out = sp.feed(data)
    if sp.pending.strip():
        out.append(sp.pending.strip())
    return out


def looks_like_at(data: bytes) -> bool:
    """Whether a DLC payload looks like AT commands or result codes (HFP/HSP inference)."""
    s = data.lstrip(b"\r\n")
    return s[:2].upper() == b"AT" or s[:1] == b"+" or s[:4] in (b"RING", b"OK\r\n", b"ERRO")


__all__ = [
    "AG_FEATURES",
    "CODECS",
    "FINAL_RESULTS",
    "HF_FEATURES",
    "UNSOLICITED",
    "AtLine",
    "LineSplitter",
    "features",
    "looks_like_at",
    "parse_line",
    "split_lines",
]
