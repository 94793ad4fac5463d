"""The layers stay layered: imports go one way (readers → decode → sessions → rules → model →
report), and only decode/ (and the readers, for container framing) reads wire bytes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "analyzer"

#: layer → the analyzer layers it may import (besides itself); model is the shared ground
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    # frame codes and byte-buffer helpers without polars (the capture layer's ground floor)
    "codes": set(),
    "decode": {"model"},
    "capture": {"model", "codes"},
    "readers": {"capture", "codes", "decode", "model"},
    "sessions": {"capture", "decode", "model"},
    "rules": {"model"},
    "report": {"model", "rules"},
    # the store drives analyses (batch workers) and keeps their results
    # (and with --anonymize analyses the scrubbed copy, issue 23)
    "store": {"model", "capture", "readers", "analysis", "scrub"},
    # pages read stored analyses; uploads are analysed by the store's worker
    "dashboards": {"model", "rules", "report", "store", "diff"},
    "diff": {"model"},
    # the scrubber rewrites wire bytes in place with the decoders' help (issue 23)
    "scrub": {"capture", "decode", "model", "readers", "writers"},
}
#: wire parsing: byte unpacking, integer assembly from bytes, shifts of bytes into words
WIRE = re.compile(r"\bstruct\b|from_bytes|\bunpack(_from)?\(|\[[^\]\n]*\d\] << 8|<< \(8 \*")


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for n in names:
            parts = n.split(".")
            if parts[0] == "analyzer" and len(parts) > 1:
                out.add(parts[1])
    return out


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if _layer(p) in ALLOWED)


#: one module may go further than its layer, with the reason
MODULE_EXCEPTIONS: dict[str, set[str]] = {
    # the packet table (issue 21 §5) lists every frame and shows our decode, a hex view and a
    # Wireshark view of the selected one: the store keeps analyses, not frames, so this one view
    # reads the capture file and decodes the frames shown; analyses are never rebuilt here
    "dashboards/packets.py": {"capture", "readers", "sessions", "decode", "writers"},
    # many payloads copied into one array by the compiled gather that is built with the
    # readers' record walks (issue 17); the numpy gather otherwise
    "capture.py": {"readers"},
    # the bytes of every report hashed for the distinct-data count, gathered by that gather
    "decode/adv_reports.py": {"readers"},
    # the frame index's header fields in one compiled pass (built with the record walks), over
    # the reader's kept heads or heads that gather copies
    "decode/hci_columns.py": {"readers"},
}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_go_one_way(path: Path) -> None:
    layer = _layer(path)
    extra = MODULE_EXCEPTIONS.get(str(path.relative_to(PKG)), set())
    bad = {m for m in _imports(path) if m != layer and m not in ALLOWED[layer] | extra}
    assert not bad, f"{layer} must not import {sorted(bad)}"


def test_wire_bytes_are_read_only_in_decode_and_readers() -> None:
    offenders = []
    for p in PKG.rglob("*.py"):
        if _layer(p) in ("decode", "readers", "writers", "capture", "scrub"):
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if WIRE.search(code):
                offenders.append(f"{p.relative_to(PKG)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_checks_catch_a_violation(tmp_path: Path) -> None:
    """The two checks are not vacuous: a rule importing a decoder and a session unpacking bytes
    are caught by the same functions."""
    (tmp_path / "x.py").write_text(
        "from analyzer.decode.hci import decode_event\nv = data[0] | (data[1] << 8)\n"
    )
    assert _imports(tmp_path / "x.py") == {"decode"}
    assert WIRE.search("v = data[0] | (data[1] << 8)")
    assert WIRE.search("int.from_bytes(raw[:6], 'little')")
    assert not WIRE.search("mask = 1 << 8")


def test_no_rule_imports_another_rule() -> None:
    """Rules share facts through the model and rules/queries.py, never through each other."""
    shared = {"base", "queries", "incidents", "docs", "__init__"}
    for p in (PKG / "rules").glob("*.py"):
        if p.stem in shared:
            continue
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "analyzer.rules."
            ):
                assert node.module.split(".")[2] in shared, f"{p.name} imports {node.module}"
