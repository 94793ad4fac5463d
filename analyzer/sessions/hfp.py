"""HFP / HSP over one RFCOMM DLC: AT transactions, service level connection, indicators, calls,
codec selection and volume (HFP 1.9 §4.2-§4.11, §4.13-§4.16, §4.28-§4.29; HSP 1.2 §4.2-§4.7).

Lines come from :mod:`analyzer.sessions.rfcomm`. A command line (``AT...``) is from the HF/HS; one
command is outstanding at a time and takes the next final result code (OK / ERROR / +CME ERROR,
V.250 §5.7.1); information results whose name matches the outstanding command are its response,
others are unsolicited (+CIEV, RING, +BCS, +VGS, ...).

SLC (HFP 1.9 §4.2.1): AT+BRSF, [AT+BAC when both support codec negotiation], AT+CIND=?,
AT+CIND?, AT+CMER, [AT+CHLD=? when both support three-way calling], [AT+BIND=, AT+BIND=?,
AT+BIND? when both support HF indicators]; the SLC is complete when the last required step got OK.
Calls follow the "call" and "callsetup" indicators, whose indexes come from +CIND test (§4.10).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.at import CODECS, FINAL_RESULTS, AtLine, parse_line
from analyzer.model import AtCommand, HfpCall, HfpSession, TimelineEvent

#: lines only HFP uses (HFP 1.9 §4.34-§4.35, plus the Apple HFP extensions +XAPL/+IPHONEACCEV);
#: generic 27.007 lines (+CLIP, +COPS, +CMEE, ...) and +VGS/+VGM (HSP too) are no evidence
HFP_ONLY = frozenset(
    {
        "+BRSF", "+CIND", "+CMER", "+BAC", "+CHLD", "+BIND", "+BIEV", "+BIA", "+BCS", "+BCC",
        "+CIEV", "+NREC", "+BVRA", "+BINP", "+BLDN", "+BTRH", "+BSIR", "+CHUP", "+XAPL",
        "+IPHONEACCEV",
    }
)  # fmt: skip
HF_CODEC_BIT = 7
AG_CODEC_BIT = 9
HF_3WAY_BIT = 1
AG_3WAY_BIT = 0
HF_IND_BIT = 8
AG_IND_BIT = 10


@dataclass
class HfpTracker:
    """State machine of one HFP/HSP session (fed line by line, in frame order)."""

    session: HfpSession
    timeline: list[TimelineEvent]
    lane: str
    anomalies: list[Any] = field(default_factory=list)  # (frame, message)
    indicator_names: list[str] = field(default_factory=list)
    hf_direction: str | None = None  # direction of HF → AG frames (sent / received)
    codec_history: list[tuple[int, int, int]] = field(default_factory=list)  # (frame, t, id)
    _pending: list[tuple[AtCommand, AtLine]] = field(default_factory=list)
    _done: set[str] = field(default_factory=set)  # SLC steps answered OK
    _proposed_codec: int | None = None
    evidence: set[str] = field(default_factory=set)  # HFP/HSP-specific lines seen

    # -- input -------------------------------------------------------------------------------
    def on_line(self, text: str, direction: str, frame: int, time_us: int) -> None:
        line = parse_line(text)
        s = self.session
        if line.is_command:
            if self.hf_direction is None:
                self.hf_direction = direction
                self._roles(direction)
            cmd = AtCommand(frame, time_us, direction, line.text, "command")
            s.at.append(cmd)
            self._pending.append((cmd, line))
            self._on_command(line, frame, time_us)
            return
        if self.hf_direction is None:
            self.hf_direction = "received" if direction == "sent" else "sent"
            self._roles(self.hf_direction)
        if line.kind == "final" or line.name in FINAL_RESULTS:
            self._final(line, frame, time_us)
            return
        if self._pending and self._pending[0][1].name == line.name:
            cmd, cline = self._pending[0]
            cmd.responses.append(line.text)
            self._on_response(cline, line)
            return
        s.at.append(AtCommand(frame, time_us, direction, line.text, "unsolicited"))
        self._on_unsolicited(line, frame, time_us)

    def _roles(self, hf_dir: str) -> None:
        s = self.session
        hf_local = hf_dir == "sent"
        if s.profile == "hsp":
            s.local_role = "hs" if hf_local else "ag"
        else:
            s.local_role = "hf" if hf_local else "ag"

    # -- commands ----------------------------------------------------------------------------
    def _on_command(self, line: AtLine, frame: int, time_us: int) -> None:
        s, n, v = self.session, line.name, line.values
        if n in HFP_ONLY:
            self.evidence.add(n)
        if n == "+CKPD":
            self.evidence.add(n)
            self._ckpd(frame, time_us)
        elif n == "+BRSF" and "value" in v:
            s.hf_features = v["value"]
        elif n == "+BAC" and "values" in v:
            s.hf_codecs = [x for x in v["values"] if x is not None]
        elif n == "+VGS" and "value" in v:
            s.volume["speaker"] = v["value"]
        elif n == "+VGM" and "value" in v:
            s.volume["microphone"] = v["value"]
        elif n in {"D", "+BLDN"}:
            self._outgoing(frame, time_us, v.get("number"))

    def _on_response(self, cmd: AtLine, line: AtLine) -> None:
        s, v = self.session, line.values
        if line.name == "+BRSF" and "value" in v:
            s.ag_features = v["value"]
        elif line.name == "+CIND":
            if "indicators" in v:
                self.indicator_names = list(v["indicators"])
            elif "values" in v:
                for i, x in enumerate(v["values"]):
                    s.indicators[self._ind_name(i + 1)] = x

    def _final(self, line: AtLine, frame: int, time_us: int) -> None:
        if not self._pending:
            self.anomalies.append((frame, f"AT result {line.text} with no command outstanding"))
            return
        cmd, cline = self._pending.pop(0)
        cmd.result = line.text if line.name == "+CME ERROR" else line.name
        cmd.result_frame = frame
        cmd.result_time_us = time_us
        if line.name != "OK":
            return
        step = cline.name + {"test": "=?", "read": "?", "set": "="}.get(cline.op, "")
        self._done.add(step)
        if cline.name == "+BCS" and cline.op == "set" and "value" in cline.values:
            self._codec(int(cline.values["value"]), frame, time_us)
        if cline.name == "A":
            self._answer_cmd(frame, time_us)
        self._check_slc(frame, time_us)

    # -- unsolicited results -----------------------------------------------------------------
    def _on_unsolicited(self, line: AtLine, frame: int, time_us: int) -> None:
        s, n, v = self.session, line.name, line.values
        if n in HFP_ONLY:
            self.evidence.add(n)
        if n == "+CIEV" and "index" in v:
            name = self._ind_name(v["index"])
            old = s.indicators.get(name)
            s.indicators[name] = v["value"]
            self._indicator(name, old, v["value"], frame, time_us)
        elif n == "RING":
            call = self._current()
            if call is None or call.end_frame is not None:
                self._new_call("incoming", frame, time_us)
        elif n in ("+CLIP", "+CCWA") and "number" in v:
            call = self._current()
            if call is not None and call.number is None and n == "+CLIP":
                call.number = v["number"]
        elif n == "+BCS" and "value" in v:
            self._proposed_codec = v["value"]
        elif n == "+VGS" and "value" in v:
            s.volume["speaker"] = v["value"]
        elif n == "+VGM" and "value" in v:
            s.volume["microphone"] = v["value"]

    def _ind_name(self, index: int) -> str:
        if 1 <= index <= len(self.indicator_names):
            return self.indicator_names[index - 1]
        return f"#{index}"

    # -- SLC ---------------------------------------------------------------------------------
    def _both(self, hf_bit: int, ag_bit: int) -> bool:
        s = self.session
        return bool(
            s.hf_features is not None
            and s.ag_features is not None
            and s.hf_features >> hf_bit & 1
            and s.ag_features >> ag_bit & 1
        )

    def slc_steps(self) -> list[str]:
        """The SLC steps HFP 1.9 §4.2.1 requires given the exchanged features."""
        steps = ["+BRSF=", "+CIND=?", "+CIND?", "+CMER="]
        if self._both(HF_CODEC_BIT, AG_CODEC_BIT):
            steps.insert(1, "+BAC=")
        if self._both(HF_3WAY_BIT, AG_3WAY_BIT):
            steps.append("+CHLD=?")
        if self._both(HF_IND_BIT, AG_IND_BIT):
            steps += ["+BIND=", "+BIND=?", "+BIND?"]
        return steps

    def _check_slc(self, frame: int, time_us: int) -> None:
        s = self.session
        if s.slc_complete or s.profile != "hfp":
            return
        if all(st in self._done for st in self.slc_steps()):
            s.slc_complete = True
            s.slc_frame = frame
            self._event(time_us, frame, "slc", "HFP service level connection established")

    # -- calls -------------------------------------------------------------------------------
    def _current(self) -> HfpCall | None:
        calls = self.session.calls
        return calls[-1] if calls and calls[-1].end_frame is None else None

    def _new_call(self, direction: str, frame: int, time_us: int) -> HfpCall:
        call = HfpCall(direction, frame, time_us)
        self.session.calls.append(call)
        self._event(time_us, frame, "call", f"{direction} call")
        return call

    def _outgoing(self, frame: int, time_us: int, number: str | None) -> None:
        call = self._current()
        if call is None:
            call = self._new_call("outgoing", frame, time_us)
        if number and call.number is None:
            call.number = number

    def _answered(self, call: HfpCall, frame: int, time_us: int) -> None:
        if call.answered_frame is None:
            call.answered_frame = frame
            self._event(time_us, frame, "call", f"{call.direction} call active")

    def _end(self, call: HfpCall, frame: int, time_us: int, how: str) -> None:
        call.end_frame, call.end_time_us = frame, time_us
        self._event(time_us, frame, "call", f"{call.direction} call {how}")

    def _answer_cmd(self, frame: int, time_us: int) -> None:
        """ATA got OK: with no indicators (HSP or CMER off) that is the answer itself."""
        call = self._current()
        if call is not None and "call" not in self.indicator_names:
            self._answered(call, frame, time_us)

    def _ckpd(self, frame: int, time_us: int) -> None:
        """HSP 1.2 §4.2-§4.4: the button answers a ringing call, else ends an active one."""
        call = self._current()
        if call is None:
            return
        if call.answered_frame is None:
            self._answered(call, frame, time_us)
        else:
            self._end(call, frame, time_us, "ended")

    def _indicator(self, name: str, old: int | None, new: int, frame: int, time_us: int) -> None:
        call = self._current()
        if name == "callsetup":
            if new in (1, 2, 3) and call is None:
                self._new_call("incoming" if new == 1 else "outgoing", frame, time_us)
            elif new == 0 and call is not None and call.answered_frame is None:
                active = self.session.indicators.get("call") == 1
                if not active:
                    self._end(call, frame, time_us, "not answered")
        elif name == "call":
            if new == 1:
                if call is None:
                    call = self._new_call("unknown", frame, time_us)
                self._answered(call, frame, time_us)
            elif new == 0 and call is not None:
                self._end(call, frame, time_us, "ended")

    # -- codec -------------------------------------------------------------------------------
    def _codec(self, codec: int, frame: int, time_us: int) -> None:
        s = self.session
        s.codec = codec
        s.codec_name = CODECS.get(codec, f"codec {codec}")
        s.codec_frame = frame
        self.codec_history.append((frame, time_us, codec))
        self._event(time_us, frame, "codec", f"HFP codec {s.codec_name} selected")

    def codec_at(self, frame: int) -> int | None:
        """The codec last selected before ``frame`` (None when no +BCS/AT+BCS was captured)."""
        # the history is in frame order: a bisect, not a scan per SCO link (issue 18 §2)
        k = bisect.bisect_right(self.codec_history, frame, key=lambda x: x[0])
        return self.codec_history[k - 1][2] if k else None

    def _event(self, time_us: int, frame: int, kind: str, text: str) -> None:
        self.timeline.append(TimelineEvent(time_us, frame, self.lane, kind, text))

    # -- end ---------------------------------------------------------------------------------
    def close(self, frame: int | None, time_us: int | None) -> None:
        """The DLC closed: open calls end with it."""
        s = self.session
        if frame is not None and s.end_frame is None:
            s.end_frame = frame
        call = self._current()
        if call is not None and frame is not None and time_us is not None:
            self._end(call, frame, time_us, "ended (service connection closed)")

    @property
    def profile_evidence(self) -> str | None:
        """'hfp' / 'hsp' when the exchange itself says which profile it is (inference)."""
        if self.evidence & HFP_ONLY:
            return "hfp"
        if "+CKPD" in self.evidence:
            return "hsp"
        return None


def call_in_progress(session: HfpSession, time_us: int) -> HfpCall | None:
    """The call of ``session`` in progress at ``time_us`` (set up, ringing or active), if any."""
    for c in session.calls:
        if c.start_time_us <= time_us and (c.end_time_us is None or time_us < c.end_time_us):
            return c
    return None


__all__ = ["HfpTracker", "call_in_progress"]
