"""The rules engine: a registry of diagnostics that read rebuilt sessions (never raw bytes).

A rule is a function ``(ctx: RuleContext) -> Iterable[Finding]`` registered with :func:`rule`,
which also declares its id, severity, title, one-line summary and named thresholds. Thresholds are
overridable per run from a TOML file (``[rule_id] name = value``) or the CLI (``--deadline``).
Modelled on Zeek's notices: stable ids, thresholds as constants, duplicates collapsed by ``count``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analyzer.model import Anomaly, DetailValue, Finding, Suppressed

if TYPE_CHECKING:
    from analyzer.model import Analysis

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Threshold:
    name: str
    default: float
    unit: str
    doc: str


@dataclass
class Rule:
    id: str
    severity: str
    title: str
    summary: str
    thresholds: tuple[Threshold, ...]
    func: Callable[[RuleContext], Iterable[Finding]]
    example: str = ""
    module: str = ""
    #: rules whose findings about the same event (same evidence frames) this rule's replace
    supersedes: tuple[str, ...] = ()


REGISTRY: dict[str, Rule] = {}
RuleFunc = Callable[["RuleContext"], Iterable[Finding]]


def rule(
    *,
    id: str,
    severity: str,
    title: str,
    summary: str,
    thresholds: Iterable[Threshold] = (),
    example: str = "",
    supersedes: Iterable[str] = (),
) -> Callable[
    [Callable[[RuleContext], Iterable[Finding]]], Callable[[RuleContext], Iterable[Finding]]
]:
    """Register a rule function under a stable finding id."""
    if severity not in SEVERITIES:
        raise ValueError(f"bad severity {severity!r}")

    def deco(fn: RuleFunc) -> RuleFunc:
        REGISTRY[id] = Rule(
            id, severity, title, summary, tuple(thresholds), fn, example, fn.__module__,
            tuple(supersedes),
        )  # fmt: skip
        return fn

    return deco


class ConfigError(Exception):
    """A bad --config file or threshold override (one-line reason)."""


@dataclass
class RuleConfig:
    """Threshold overrides: ``{rule_id: {threshold_name: value}}``."""

    overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)

    @classmethod
    def from_toml(cls, path: str) -> RuleConfig:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
        cfg = cls()
        load_all()
        for key, val in data.items():
            if key == "disabled" and isinstance(val, list):
                for v in val:
                    if str(v) not in REGISTRY:
                        raise ConfigError(f"config {path}: disabled: unknown rule {v!r}")
                    cfg.disabled.add(str(v))
                continue
            if key not in REGISTRY or not isinstance(val, dict):
                raise ConfigError(f"config {path}: unknown rule [{key}]")
            known = {t.name for t in REGISTRY[key].thresholds}
            for name, v in val.items():
                if name not in known:
                    raise ConfigError(f"config {path}: rule {key} has no threshold {name!r}")
                if not isinstance(v, int | float):
                    raise ConfigError(f"config {path}: {key}.{name} must be a number")
                cfg.overrides.setdefault(key, {})[name] = float(v)
        return cfg

    def set(self, rule_id: str, name: str, value: float) -> None:
        """Override one threshold; an unknown rule or threshold is a :class:`ConfigError` (the
        API refuses what the CLI refuses: a misspelt name would silently change nothing)."""
        load_all()
        if rule_id not in REGISTRY:
            raise ConfigError(f"unknown rule {rule_id!r}")
        known = {t.name for t in REGISTRY[rule_id].thresholds}
        if name not in known:
            raise ConfigError(
                f"rule {rule_id} has no threshold {name!r} (it has: {', '.join(sorted(known))})"
            )
        self.overrides.setdefault(rule_id, {})[name] = float(value)

    def disable(self, rule_id: str) -> None:
        """Turn a rule off; an unknown rule id is a :class:`ConfigError`."""
        load_all()
        if rule_id not in REGISTRY:
            raise ConfigError(f"unknown rule {rule_id!r} (see btanalyze rules)")
        self.disabled.add(rule_id)


@dataclass
class RuleContext:
    """What a rule sees: the rebuilt sessions and its thresholds."""

    analysis: Analysis
    rule: Rule
    config: RuleConfig
    suppressed: list[Suppressed] = field(default_factory=list)

    def threshold(self, name: str) -> float:
        for t in self.rule.thresholds:
            if t.name == name:
                return self.config.overrides.get(self.rule.id, {}).get(name, t.default)
        raise KeyError(f"rule {self.rule.id} has no threshold {name}")

    def suppress(
        self,
        *,
        what: str,
        why: str,
        frames: Iterable[int] = (),
        address: str | None = None,
        connection: str | None = None,
        time_us: int | None = None,
    ) -> None:
        """Record something this rule recognised as benign and does not report (kept in the
        result's ``suppressed`` table with the reason)."""
        self.suppressed.append(
            Suppressed(self.rule.id, what, why, sorted(set(frames)), address, connection, time_us)
        )

    def finding(
        self,
        *,
        message: str,
        explanation: str,
        fix: str,
        key: str | None = None,
        severity: str | None = None,
        title: str | None = None,
        address: str | None = None,
        connection: str | None = None,
        time_us: int | None = None,
        frames: Iterable[int] = (),
        count: int = 1,
        details: dict[str, DetailValue] | None = None,
    ) -> Finding:
        """A finding of this rule. ``key`` names the problem the same way in every capture
        (e.g. opcode and status, or PSM and result — never a connection id or a frame): the
        engine merges findings with the same key on the same connection, and a store counts
        them across captures. Without one, the device address is the key."""
        return Finding(
            id=self.rule.id,
            severity=severity or self.rule.severity,
            title=title or self.rule.title,
            message=message,
            explanation=explanation,
            fix=fix,
            address=address,
            connection=connection,
            time_us=time_us,
            frames=list(frames),
            count=count,
            details=dict(details or {}),
            key=f"{self.rule.id}:{key if key is not None else address or '-'}",
        )


_loaded = False


def load_all() -> dict[str, Rule]:
    """Import every rule module in analyzer/rules (one module per rule)."""
    global _loaded
    if not _loaded:
        import importlib
        import pkgutil

        import analyzer.rules as pkg

        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name not in ("base", "engine", "docs", "queries", "incidents"):
                importlib.import_module(f"analyzer.rules.{mod.name}")
        _loaded = True
    return REGISTRY


def run_rules(analysis: Analysis, config: RuleConfig | None = None) -> list[Finding]:
    """Run every registered rule (a rule that fails becomes an anomaly, not a crash), drop what
    a superseding rule reported about the same event, and merge findings of one key."""
    with analysis.frozen():  # rules only read it: look-ups by id and grouped tables are kept
        return _run_rules(analysis, config or RuleConfig())


def _run_rules(analysis: Analysis, config: RuleConfig) -> list[Finding]:
    raw: list[Finding] = []
    rules = load_all()
    suppressed: list[Suppressed] = []
    for r in rules.values():
        if r.id in config.disabled:
            continue
        ctx = RuleContext(analysis, r, config, suppressed)
        try:
            raw.extend(r.func(ctx))
        except Exception as exc:  # a rule bug must not lose the rest of the analysis
            analysis.anomalies.append(
                Anomaly(0, "rules", f"rule {r.id} failed: {type(exc).__name__}: {exc}")
            )
    findings = merge_findings(apply_precedence(raw, rules))
    analysis.suppressed = sorted(suppressed, key=lambda s: (s.time_us or 0, s.rule))
    from analyzer.rules.incidents import build_incidents

    findings, analysis.incidents = build_incidents(analysis, findings)
    return findings


def apply_precedence(findings: list[Finding], rules: dict[str, Rule]) -> list[Finding]:
    """Drop a finding when a rule that supersedes its rule cites all of its evidence frames: the
    same event told twice (a stale bond is not also a pairing failure). A cause and its
    consequence cite different frames, so both stay."""
    covered: dict[str, set[int]] = {}
    for f in findings:
        for loser in rules[f.id].supersedes if f.id in rules else ():
            covered.setdefault(loser, set()).update(f.frames)
    return [
        f for f in findings if not (f.id in covered and f.frames and set(f.frames) <= covered[f.id])
    ]


def merge_findings(findings: list[Finding]) -> list[Finding]:
    """One finding per (key, connection, severity): counts added, evidence frames united, the
    earliest time kept, the first finding's words kept."""
    merged: dict[tuple[str, str | None, str], Finding] = {}
    frames: dict[tuple[str, str | None, str], set[int]] = {}  # united once, sorted at the end
    for f in findings:
        k = (f.key, f.connection, f.severity)
        m = merged.get(k)
        if m is None:
            merged[k] = f
            continue
        frames.setdefault(k, set(m.frames)).update(f.frames)
        m.count += f.count
        if f.time_us is not None and (m.time_us is None or f.time_us < m.time_us):
            m.time_us = f.time_us
    for k, fs in frames.items():
        merged[k].frames = sorted(fs)
    return list(merged.values())


__all__ = [
    "REGISTRY",
    "SEVERITIES",
    "SEVERITY_RANK",
    "ConfigError",
    "Finding",
    "Rule",
    "RuleConfig",
    "RuleContext",
    "Threshold",
    "apply_precedence",
    "load_all",
    "merge_findings",
    "rule",
    "run_rules",
]
