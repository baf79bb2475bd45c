"""Service level objectives: ``observability/slos.toml`` in, Prometheus rules out.

Each objective becomes recording rules of its error ratio over 5 m, 30 m, 1 h and 6 h and one
multiwindow multi-burn-rate alert (Google SRE workbook, "Alerting on SLOs") with two rules: fast
burn (1 h and 5 m above 14.4× the error budget) is critical, slow burn (6 h and 30 m above 6×) a
warning. The rendering is committed as ``observability/rules/slo.yml`` (deployments load the same
file); ``python -m caravan_workspace.ops.slo --write`` regenerates it and a test fails while it is
stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from caravan_workspace.ops.rules import RUNBOOKS_DIR

SLOS_FILE = Path("observability") / "slos.toml"
RULES_FILE = Path("observability") / "rules" / "slo.yml"
WINDOWS = ("5m", "30m", "1h", "6h")
#: (name, long window, short window, burn-rate factor, severity, for)
BURNS = (
    ("fast", "1h", "5m", 14.4, "critical", "2m"),
    ("slow", "6h", "30m", 6.0, "warning", "15m"),
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ALERT = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class SloError(ValueError):
    """The objectives file is invalid; the message names the offending entry."""


@dataclass(frozen=True)
class Slo:
    name: str
    alert: str
    title: str
    kind: str  # availability | latency
    service: str
    method: str
    route: str
    objective: float
    period: str
    threshold_s: float | None = None

    @property
    def budget(self) -> float:
        return round(1.0 - self.objective, 10)

    def selector(self, extra: str = "") -> str:
        labels = f'job="services", service="{self.service}", method="{self.method}", route="{self.route}"'
        return "{" + labels + extra + "}"

    def error_ratio(self, window: str) -> str:
        if self.kind == "availability":
            bad = self.selector(', status=~"5.."')
            return (
                f"(sum(rate(http_requests_total{bad}[{window}])) or vector(0))\n"
                f"/\nsum(rate(http_requests_total{self.selector()}[{window}]))"
            )
        good = self.selector(f', le="{self.threshold_s!r}"')
        return (
            f"1 - (\n  sum(rate(http_request_duration_seconds_bucket{good}[{window}]))\n"
            f"  /\n  sum(rate(http_request_duration_seconds_count{self.selector()}[{window}]))\n)"
        )

    def record(self, window: str) -> str:
        return f"slo:{self.name}:error_ratio_rate{window}"


def load(root: Path) -> list[Slo]:
    path = root / SLOS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SloError(f"{SLOS_FILE}: {exc}") from exc
    slos: list[Slo] = []
    for i, raw in enumerate(data.get("slo", []), 1):
        where = f"{SLOS_FILE}: slo #{i}"
        try:
            slo = Slo(**raw)
        except TypeError as exc:
            raise SloError(f"{where}: {exc}") from exc
        if not _NAME.match(slo.name) or not _ALERT.match(slo.alert):
            raise SloError(f"{where}: name must be snake_case and alert CamelCase")
        if not 0.0 < slo.objective < 1.0:
            raise SloError(f"{where}: objective must be between 0 and 1 (exclusive)")
        if slo.kind not in ("availability", "latency"):
            raise SloError(f"{where}: kind must be availability or latency")
        if (slo.kind == "latency") != (slo.threshold_s is not None):
            raise SloError(f"{where}: threshold_s is required for latency and only for latency")
        slos.append(slo)
    if len({s.name for s in slos}) != len(slos) or len({s.alert for s in slos}) != len(slos):
        raise SloError(f"{SLOS_FILE}: SLO names and alerts must be unique")
    return slos


def _alert_rules(slo: Slo) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for burn, long, short, factor, severity, hold in BURNS:
        threshold = round(factor * slo.budget, 10)
        rules.append(
            {
                "alert": slo.alert,
                "expr": f"{slo.record(long)} > {threshold:g}\nand\n{slo.record(short)} > {threshold:g}",
                "for": hold,
                "labels": {"severity": severity, "service": slo.service, "slo": slo.name, "burn": burn},
                "annotations": {
                    "summary": f"{slo.title}: error budget burning {factor:g}x too fast ({burn} burn)",
                    "description": (
                        f"{slo.title} (objective {slo.objective:.2%} over {slo.period}) has failed "
                        f"{{{{ $value | humanizePercentage }}}} of its events over the last {long} "
                        f"(and over {short}): at {factor:g}x the budget it is spent "
                        f"{'in about two days' if burn == 'fast' else 'in about five days'}."
                    ),
                    "runbook_url": f"{RUNBOOKS_DIR.as_posix()}/{slo.alert}.md",
                },
            }
        )
    return rules


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as a person would write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def render(slos: Sequence[Slo]) -> str:
    groups = []
    for slo in slos:
        records = [
            {"record": slo.record(w), "expr": slo.error_ratio(w), "labels": {"service": slo.service}}
            for w in WINDOWS
        ]
        groups.append({"name": f"slo-{slo.name}", "rules": [*records, *_alert_rules(slo)]})
    header = (
        "# GENERATED from observability/slos.toml by `python -m caravan_workspace.ops.slo --write`.\n"
        "# Do not edit: change the objectives there and regenerate.\n"
    )
    return header + yaml.dump(
        {"groups": groups}, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the SLO rules from observability/slos.toml.")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--write", action="store_true", help="write observability/rules/slo.yml")
    args = parser.parse_args(argv)
    try:
        text = render(load(args.root))
    except SloError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.write:
        (args.root / RULES_FILE).write_text(text, encoding="utf-8")
        print(f"wrote {RULES_FILE}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
