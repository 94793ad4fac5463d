"""Generate docs/rules.md from the rules' own metadata: ``python -m analyzer.rules.docs``."""

from __future__ import annotations

import sys
from pathlib import Path

from analyzer.rules.base import load_all

HEADER = """# Rules

Generated from the rules' metadata by `python -m analyzer.rules.docs` (a test fails when this file
is stale). Each finding carries `id`, `severity`, `title`, `message`, `explanation`, `fix`,
`address`, `connection`, `time_us`, evidence `frames`, `count` and `details`. Thresholds can be
overridden in a TOML file given with `--config`:

```toml
[response_timeout]
deadline_s = 10

disabled = ["a2dp_stream_not_started"]
```

and the main one from the command line: `btanalyze analyze --deadline 10s FILE`.

| id | severity | what it finds |
|---|---|---|
"""


def render() -> str:
    rules = sorted(load_all().values(), key=lambda r: r.id)
    out = [HEADER]
    out += [f"| [`{r.id}`](#{r.id}) | {r.severity} | {r.summary} |\n" for r in rules]
    for r in rules:
        out.append(f"\n## {r.id}\n\n**{r.title}** — severity `{r.severity}`.\n\n{r.summary}.\n")
        mod = sys.modules.get(r.module)
        doc = (mod.__doc__ or "").strip() if mod else ""
        if doc:
            out.append(f"\n{doc}\n")
        if r.thresholds:
            out.append("\n| threshold | default | meaning |\n|---|---|---|\n")
            out += [f"| `{t.name}` | {t.default:g} {t.unit} | {t.doc} |\n" for t in r.thresholds]
        if r.example:
            out.append(f"\nExample message:\n\n> {r.example}\n")
    return "".join(out)


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
