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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analyzer.analysis import Analysis

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class Finding:
    """One diagnosis, with its evidence."""

    id: str
    severity: str
    title: str
    message: str  # one line naming devices and numbers
    explanation: str  # what the spec expects and what happened
    fix: str  # what the user can do
    address: str | None = None
    connection: str | None = None
    time_us: int | None = None
    frames: list[int] = field(default_factory=list)
    count: int = 1
    details: dict[str, Any] = field(default_factory=dict)


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
) -> Callable[
    [Callable[[RuleContext], Iterable[Finding]]], Callable[[RuleContext], Iterable[Finding]]
]:
    """Register a rule function under a stable finding id."""
    if severity not in SEVERITIES:
        raise ValueError(f"bad severity {severity!r}")

    def deco(fn: RuleFunc) -> RuleFunc:
        REGISTRY[id] = Rule(
            id, severity, title, summary, tuple(thresholds), fn, example, fn.__module__
        )
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
                cfg.disabled.update(str(v) for v in val)
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
        self.overrides.setdefault(rule_id, {})[name] = value


@dataclass
class RuleContext:
    """What a rule sees: the rebuilt sessions and its thresholds."""

    analysis: Analysis
    rule: Rule
    config: RuleConfig

    def threshold(self, name: str) -> float:
        for t in self.rule.thresholds:
            if t.name == name:
                return self.config.overrides.get(self.rule.id, {}).get(name, t.default)
        raise KeyError(f"rule {self.rule.id} has no threshold {name}")

    def finding(self, **kw: Any) -> Finding:
        """A finding with this rule's id, severity and title filled in."""
        kw.setdefault("severity", self.rule.severity)
        kw.setdefault("title", self.rule.title)
        return Finding(id=self.rule.id, **kw)


_loaded = False


def load_all() -> dict[str, Rule]:
    """Import every rule module in analyzer/rules (one module per rule)."""
    global _loaded
    if not _loaded:
        import importlib
        import pkgutil

        import analyzer.rules as pkg

        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name not in ("base", "engine", "docs"):
                importlib.import_module(f"analyzer.rules.{mod.name}")
        _loaded = True
    return REGISTRY


def run_rules(analysis: Analysis, config: RuleConfig | None = None) -> list[Finding]:
    """Run every registered rule; a rule that fails becomes an anomaly, not a crash."""
    from analyzer.sessions.model import Anomaly

    config = config or RuleConfig()
    findings: list[Finding] = []
    for r in load_all().values():
        if r.id in config.disabled:
            continue
        ctx = RuleContext(analysis, r, config)
        try:
            findings.extend(r.func(ctx))
        except Exception as exc:  # a rule bug must not lose the rest of the analysis
            analysis.anomalies.append(
                Anomaly(0, "rules", f"rule {r.id} failed: {type(exc).__name__}: {exc}")
            )
    findings.sort(key=lambda f: (SEVERITY_RANK[f.severity], f.time_us or 0, f.id))
    return findings
