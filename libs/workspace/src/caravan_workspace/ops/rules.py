"""The Prometheus rules under ``observability/rules/``: which alerts exist, what they carry, and
which raw series their expressions read (the "metrics collected" gate checks those exist)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RULES_DIR = Path("observability") / "rules"
TESTS_DIR = Path("observability") / "tests"
RUNBOOKS_DIR = Path("observability") / "runbooks"
SEVERITIES = ("critical", "warning")
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")

#: PromQL words that look like metric names: operators, modifiers, grouping, literals.
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
    | {"offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\w)(\s*\()?")


class RulesError(ValueError):
    """A rules file is unreadable or not what Prometheus expects; the message names it."""


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    name: str  # the alert's or the recorded series' name
    expr: str
    is_alert: bool
    labels: dict[str, str]
    annotations: dict[str, str]


def rule_files(root: Path) -> list[Path]:
    return sorted((root / RULES_DIR).glob("*.yml"))


def load_rules(root: Path) -> list[Rule]:
    rules: list[Rule] = []
    for path in rule_files(root):
        try:
            document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RulesError(f"{path.name}: {exc}") from exc
        for group in (document or {}).get("groups", []):
            for raw in group.get("rules", []):
                rules.append(
                    Rule(
                        file=path.name,
                        group=str(group.get("name", "")),
                        name=str(raw.get("alert") or raw.get("record")),
                        expr=str(raw.get("expr", "")),
                        is_alert="alert" in raw,
                        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
                        annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
                    )
                )
    return rules


def alerts(root: Path) -> dict[str, list[Rule]]:
    """Alert name → its rules (an SLO alert has two: fast and slow burn)."""
    found: dict[str, list[Rule]] = {}
    for rule in load_rules(root):
        if rule.is_alert:
            found.setdefault(rule.name, []).append(rule)
    return found


def series_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, label names and strings
    left out)."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def raw_series(root: Path) -> set[str]:
    """The scraped series every rule depends on, recorded series resolved to what they read."""
    rules = load_rules(root)
    recorded = {r.name: r.expr for r in rules if not r.is_alert}
    needed: set[str] = set()
    pending = [r.expr for r in rules]
    seen: set[str] = set()
    while pending:
        for name in series_in(pending.pop()):
            if name in recorded:
                if name not in seen:
                    seen.add(name)
                    pending.append(recorded[name])
            else:
                needed.add(name)
    return needed


def problems(root: Path) -> list[str]:
    """What an alert lacks: a known severity, every annotation, a runbook link to its own file."""
    found = []
    for name, rules in sorted(alerts(root).items()):
        for rule in rules:
            if rule.labels.get("severity") not in SEVERITIES:
                found.append(f"{name} ({rule.file}): severity must be one of {', '.join(SEVERITIES)}")
            missing = [a for a in REQUIRED_ANNOTATIONS if not rule.annotations.get(a)]
            if missing:
                found.append(f"{name} ({rule.file}): no {', '.join(missing)}")
            expected = f"{RUNBOOKS_DIR.as_posix()}/{name}.md"
            if rule.annotations.get("runbook_url") not in (None, "", expected):
                found.append(f"{name} ({rule.file}): runbook_url must be {expected}")
    return found
