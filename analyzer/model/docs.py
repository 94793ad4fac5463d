"""Generate docs/json-schema.md from the model: ``python -m analyzer.model.docs`` (a test checks
the file is current). Field notes are the comments beside the fields in the record's source."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from pathlib import Path

from analyzer.model.analysis import SCHEMA, TABLE_PATHS, Analysis
from analyzer.model.base import field_types, is_record

OUT = Path(__file__).resolve().parents[2] / "docs" / "json-schema.md"

INTRO = f"""# `btanalyze analyze --json`: the document

Generated from the model (`analyzer/model/`) by `python -m analyzer.model.docs`; do not edit.

`schema` names the version: `{SCHEMA}`. Keys may be added, never renamed (the schema-1 keys
scripts use are all still here). Times are integer Unix microseconds (`*_time_us`); every item
that stands for packets carries its frame numbers (1-based, as Wireshark numbers frames). HCI
status and reason codes are integers with their Core-spec names beside them (`*_name`). The
command prints it indented on a terminal and on one line when its output is piped or redirected
(`| jq .` indents it).

`Analysis.from_json(doc)` rebuilds the analysis from this document exactly; `Analysis.table(name)`
gives each table as a polars DataFrame with a fixed schema (maps become lists of `key`/`value`,
a finding's `details` become JSON text), and `Analysis.to_parquet(dir, capture_id)` writes one
Parquet file per table with a leading `capture_id` column.
"""


def type_name(tp: object) -> str:
    inner, optional = _optional(tp)
    origin = typing.get_origin(inner)
    if origin is list:
        s = f"list of {type_name(typing.get_args(inner)[0])}"
    elif origin is dict:
        s = f"map of {type_name(typing.get_args(inner)[1])}"
    elif is_record(inner):
        name = typing.cast(type, inner).__name__
        s = f"[{name}](#{name.lower()})"
    elif isinstance(inner, type):
        s = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}.get(
            inner.__name__, inner.__name__
        )
    else:
        s = "number, string, boolean or list"  # a detail value
    return f"{s} or null" if optional else s


def _optional(tp: object) -> tuple[object, bool]:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def _notes(cls: type) -> dict[str, str]:
    src = inspect.getsource(cls)
    notes: dict[str, str] = {}
    for m in re.finditer(r"^\s{4}(\w+): [^#\n]+#:?\s*(.+)$", src, re.M):
        notes[m.group(1)] = m.group(2).strip()
    for m in re.finditer(r"^\s{4}#: (.+)\n\s{4}(\w+):", src, re.M):
        notes.setdefault(m.group(2), m.group(1).strip())
    return notes


def records_in_order(root: type) -> list[type]:
    out: list[type] = []

    def walk(cls: type) -> None:
        if cls in out:
            return
        out.append(cls)
        for _, tp in field_types(cls):
            for sub in _nested(tp):
                walk(sub)

    walk(root)
    return out


def _nested(tp: object) -> list[type]:
    if is_record(tp):
        return [typing.cast(type, tp)]
    return [r for a in typing.get_args(tp) for r in _nested(a)]


def render() -> str:
    lines = [INTRO, "## Tables", "", "| table | path in the document | row |", "|---|---|---|"]
    from analyzer.model.analysis import TABLE_RECORDS

    for name, path in TABLE_PATHS.items():
        rec = TABLE_RECORDS[name]
        lines.append(
            f"| `{name}` | `{'.'.join(path)}` | [{rec.__name__}](#{rec.__name__.lower()}) |"
        )
    lines.append("")
    for cls in records_in_order(Analysis):
        lines.append(f"## {cls.__name__}")
        lines.append("")
        doc = inspect.getdoc(cls) or ""
        if doc and not doc.startswith(cls.__name__ + "("):
            lines += [" ".join(doc.split()), ""]
        lines += ["| key | type | note |", "|---|---|---|"]
        notes = _notes(cls)
        if cls is Analysis:
            lines.append(f"| `schema` | string | `{SCHEMA}` |")
        for name, tp in field_types(cls):
            note = notes.get(name, "").replace("|", "\\|")
            lines.append(f"| `{name}` | {type_name(tp)} | {note} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")


if __name__ == "__main__":
    main()
