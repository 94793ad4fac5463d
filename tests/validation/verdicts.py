"""The adversarial review of every error and warning finding on the shared corpus: for each, the
verdict after trying to prove it wrong from the frames around it (checked with tshark), and the
evidence. ``python -m tests.validation.verdicts`` writes docs/validation.md from this table and
the current analysis; tests/test_validation.py checks that both agree."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from analyzer.model import Analysis, Finding

#: (capture, finding id, first evidence frame) → (verdict, evidence)
VERDICTS: dict[tuple[str, str, int], tuple[str, str]] = {
    ("AshMartian_HappyLeaf_Leafspy_Read_DCT_btsnoop_hci.log", "connection_failed", 269): (
        "TRUE, recovered",
        "Create Connection #269 → Connection Complete 0x04 Page Timeout #271; the retry "
        "#272 connects at #274 (Connection Complete status 0). Graded warning with the "
        "recovery; the 8.7 s successful page is not a second finding.",
    ),
    ("FrankHJCuypers_fuut_hci_snoop20250125165300.cfa", "connection_failed", 658): (
        "TRUE, recovered",
        "LE Extended Create Connection → LE Enhanced Connection Complete 0x3E #673; a later LE "
        "connection to FF:B8:37:72:4F:F8 succeeds (charging session continues).",
    ),
    (
        "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng",
        "pairing_failed",
        1145,
    ): (
        "TRUE, recovered",
        "SMP Pairing Failed 0x0A ×5 sent by the device (tshark btsmp.reason); the attack tool "
        "pairs successfully later in the capture.",
    ),
    (
        "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng",
        "pairing_failed",
        2703,
    ): (
        "TRUE, recovered",
        "SMP Pairing Failed 0x04 ×4 sent by the device; a later pairing succeeds.",
    ),
    (
        "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng",
        "pairing_failed",
        3614,
    ): (
        "TRUE, recovered",
        "SMP Pairing Failed 0x07 ×5 sent by the device; a later pairing succeeds.",
    ),
    ("AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log", "rfcomm_no_reply", 298): (
        "TRUE",
        "SPP DLC channel 1 opens (SABM #287, UA #289); the app writes ELM327 commands #298-#314 "
        "(tshark btspp.data: ATE1, ATZ, ATE0, ATL0, ATI, STI, ATSP6, ATH1…); the dongle sends "
        "only credit UIH frames (#305, #313, no payload); sniff at #316-#318; the app closes "
        "the DLC 14.7 s after its first command (DISC #319, UA #321). The link itself works.",
    ),
    ("mtoslalibu_ec521_btsnoop_hci.log", "connection_failed", 11824): (
        "TRUE, recovered",
        "LE Create Connection to CE:5D:95:7B:30:53 with filter policy 0 (direct) #11824 at "
        "210.42 s, LE Create Connection Cancel #12804 at 215.42 s (the app's 5 s timeout), LE "
        "Enhanced Connection Complete 0x02 #12807; the retry #13713 connects at #14081. "
        "Warning with the recovery.",
    ),
    ("danisla_iot-bed_btsnoop_hci.log", "link_loss", 295): (
        "TRUE",
        "Disconnection Complete reason 0x08 #397, 21 s after the LE link came up; no later "
        "connection to 68:9E:19:12:7E:7F in the capture. Cause named: the device's L2CAP "
        "Connection Parameter Update Request #295 (accepted #296) led to LE Connection Update "
        "Complete #301 with Supervision Timeout 10 (0.1 s, tshark), 15 s before the loss.",
    ),
    ("durnerj_PoGo-Plus-BLE_btsnoop_hci.log", "hci_command_failed", 542): (
        "TRUE",
        "LE Add Device to Filter Accept List → Command Complete 0x17 #543 (tshark "
        "bthci_evt.status); not a start-up probe (after connections), not repeated.",
    ),
    ("durnerj_PoGo-Plus-BLE_btsnoop_hci.log", "connection_failed", 604): (
        "TRUE, recovered",
        "LE link created and dropped with 0x3E #610 (tshark bthci_evt.reason); the next LE "
        "connection to 7C:BB:8A:CB:0C:8D succeeds.",
    ),
    ("francozappa_bluffs_sc-pixelbuds-aseries.pcapng", "short_connection", 1637): (
        "TRUE",
        "The buds send no HCI-visible reason first; Disconnection Complete 0x13 #2000, 17.8 s "
        "after the link came up, with no Disconnect from the host before it. (The AVCTP "
        "refusals of this capture are collisions and teardown refusals: suppressed.)",
    ),
    ("joelarula_darkelf_btsnoop_hci.log", "link_loss", 612): (
        "TRUE",
        "Disconnection Complete reason 0x08 #612 after 146.5 s; no reconnection follows.",
    ),
    ("johnfidel_smartEnergyMeter_btsnoop_hci.log", "response_timeout", 1640): (
        "TRUE",
        "Handle Value Indication (Device Name) #1640 never confirmed; the host disconnects "
        "exactly 30.0 s later (#1685, the ATT transaction timeout, Vol 3 Part F §3.3.3).",
    ),
    ("johnfidel_smartEnergyMeter_btsnoop_hci.log", "response_timeout", 4948): (
        "TRUE",
        "Same pattern: indication #4948 unconfirmed, link closed 30 s later.",
    ),
    ("mchwalisz_lightsapp-cli_btsnoop_hci.log", "connection_failed", 728): (
        "TRUE, recovered",
        "LE Create Connection → 0x3E #740 (catalog N29); the next connection to "
        "24:35:CC:12:D6:34 succeeds.",
    ),
    ("mishaal79_blproject_a1_wcap_connection_movement.pcapng", "controller_reset", 253): (
        "TRUE",
        "HCI Reset #253 and #257 40.6 s into a capture with an open connection, followed by a "
        "fresh start-up sequence (BlueZ re-initialising the adapter).",
    ),
    ("mishaal79_blproject_a3_ueboom_nopairing_onlysesskey.pcapng", "response_timeout", 101): (
        "TRUE, warning",
        "The speaker's AT+XAPL #101 (Apple vendor extension) gets no OK/ERROR from the BlueZ "
        "host; A2DP and HSP carry on: a vendor feature is lost, nothing the user hears.",
    ),
    ("mishaal79_blproject_a3_ueboom_nopairing_onlysesskey.pcapng", "response_timeout", 683): (
        "TRUE, warning",
        "AT+IPHONEACCEV battery reports #683… ×10 unanswered by the host (vendor extension).",
    ),
    ("nick0451_dsp408-tuner_btsnoop_hci.log", "link_loss", 15796): (
        "TRUE",
        "Disconnect Complete reason 0x08 #15796 at t = 1995 s (catalog N2); no reconnection.",
    ),
    ("robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered", "connection_failed", 147): (
        "TRUE, warning",
        "HCI Reset #1, Create Connection #147 0.75 s later and two retries: Page Timeouts "
        "#202/#232/#262 (tshark: Connect Complete 0x04) — the phone reconnecting its last "
        "device at Bluetooth-on with the earbuds off. Not recovered: the earbuds connect on "
        "their own 67 min later (#1586), which is no retry.",
    ),
}

#: patterns recognised as benign on the corpus (suppressed, with the reason in the JSON)
SUPPRESSED_EXAMPLES = (
    (
        "francozappa_bluffs_sc-pixelbuds-aseries.pcapng",
        "AVCTP collisions (889/892, 1271/1274) and refusals during teardown (573, 1178, 1558)",
    ),
    ("ap4y_iSAP_hci_dump.pklg", "Accept Connection Request sent twice (#31, #104)"),
    (
        "cheoljun99_bluetooth-pcap-test_bluetooth.pcap",
        "LE Set Periodic Advertising Enable (disable) → 0x0C ×11",
    ),
    (
        "fotonick_hciparse_test00.pklg",
        "LE Set Scan Enable (disable) → 0x0C ×68; LE Create Connection re-sent while pending ×3",
    ),
    (
        "AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log",
        "start-up probes (LE Set Event Mask 0x20 ×2)",
    ),
    (
        "RokoAB_Bluetooth-Low-Energy-communication_Iphone_sound_airtag_airpods.log",
        "no longer a false 'unanswered LE Enable Encryption': Encryption Change v2 (0x59) #691 "
        "completes it",
    ),
)


#: failure signals tshark shows that no finding (and no suppressed entry) covers, surveyed on the
#: shared corpus with one display filter (HCI statuses, disconnect reasons, negative replies,
#: SMP Pairing Failed, ATT/SDP errors, AVDTP rejects, L2CAP refusals and rejects, RFCOMM DM),
#: and the judgement: which deserve a finding (and which issue will add it)
UNREPORTED = (
    (
        "ATT Error Response 0x0A Attribute Not Found (≈400 PDUs on 22 captures)",
        "not a failure: GATT discovery ends with it (Core Vol 3 Part G §4.4.1, §4.5.1)",
    ),
    (
        "Disconnection Complete with 0x13 / 0x16 (≈30 on 20 captures)",
        "not a failure: an orderly disconnect by one side's host; unusual ones are "
        "short_connection and periodic_disconnect",
    ),
    (
        "LE (Enhanced) Connection Complete 0x02 after a cancel (fotonick ×62, RokoAB ×2, "
        "durnerj ×2: background connects; mtoslalibu ×1: direct)",
        "attempt rows with `cancelled` in `connections`; a finding only for a direct connect "
        "given up after ≥ 5 s (mtoslalibu, above) — background connects are cancelled to change "
        "the filter accept list",
    ),
    (
        "RFCOMM DM (pfalcon channel 3 #588)",
        "not a refusal: the phone accepted the SABM (UA #572) and closed the DLC itself (DISC "
        "#576, UA #585); the DM follows the close. `rfcomm_refused` reports DM answering SABM; "
        "none on the corpus",
    ),
    (
        "Mode Change / LE Read Remote Features Complete with a status (HappyLeaf, durnerj, "
        "FrankHJCuypers, mchwalisz)",
        "minor: sniff refused or a feature the peer lacks; reported only with the RFCOMM/SPP "
        "story of issue #14",
    ),
    (
        "Link Key Request Negative Reply (bluffs)",
        "not a failure: the host had no key yet and paired (pairing attempts show it)",
    ),
)


def rows(analysis_of: Callable[[Path], object]) -> list[tuple[str, Finding]]:
    """(capture, finding) for every error/warning finding on the shared corpus."""
    from tests.conftest import shared_captures

    out = []
    for p in shared_captures():
        a = analysis_of(p)
        if not isinstance(a, Analysis):
            continue  # not a capture: nothing to validate
        out += [(p.name, f) for f in a.findings if f.severity != "info"]
    return out


def render(analysis_of: Callable[[Path], object]) -> str:
    lines = [
        "# Validation: every error and warning on the shared corpus, tried against the frames",
        "",
        "Generated by `python -m tests.validation.verdicts` (a test checks it is current). For "
        "each finding of severity error or warning on `../shared/captures`, the verdict after "
        "trying to prove it wrong from the frames around it with tshark (did a retry succeed, "
        "was the link encrypted, a collision, a teardown, a start-up probe?).",
        "",
        "| capture | finding | severity | frames | verdict | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in rows(analysis_of):
        verdict, evidence = VERDICTS.get(key_of(name, f), ("NOT REVIEWED", ""))
        frames = ", ".join(map(str, f.frames[:8]))
        lines.append(f"| {name} | `{f.id}` | {f.severity} | {frames} | {verdict} | {evidence} |")
    lines += ["", "## Recognised as benign (not reported; `suppressed` in the JSON)", ""]
    lines += [f"- {name}: {what}" for name, what in SUPPRESSED_EXAMPLES]
    lines += ["", "## Failure signals no finding reports, and why", ""]
    lines += [f"- **{what}** — {why}" for what, why in UNREPORTED]
    return "\n".join(lines) + "\n"


def key_of(name: str, f: Finding) -> tuple[str, str, int]:
    return name, f.id, f.frames[0] if f.frames else 0


OUT = Path(__file__).resolve().parents[2] / "docs" / "validation.md"

if __name__ == "__main__":
    from analyzer.analysis import analyze

    def _analysis(p: Path) -> object:
        try:
            return analyze(p)
        except Exception as exc:  # a non-capture
            return exc

    OUT.write_text(render(_analysis))
    sys.stdout.write(f"wrote {OUT}\n")
