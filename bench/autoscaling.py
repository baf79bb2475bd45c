"""Autoscaling, shown: one load profile through Kubernetes' HPA algorithm and the Nomad
Autoscaler's target-value strategy, with the settings rendered for an environment, side by side.

    python bench/autoscaling.py [--env dev] [--service svc-b] [--peak 3.0]

The profile: a quarter of one instance's capacity, a ramp to 3× one instance's capacity, a hold, a
fall, quiet again (caravan_workspace.autoscaling). The baseline, in the same run, is the
deploy-time count never scaled. Prints the two replica timelines (and each one's CPU) next to the
load, the seconds each spent saturated, and checks that no count left the scaling bounds; writes
bench/results/autoscaling-<env>-<service>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from caravan_workspace import autoscaling

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev")
    parser.add_argument("--service", default="svc-b")
    parser.add_argument("--peak", type=float, default=3.0)
    args = parser.parse_args()
    hpa, nomad, start = autoscaling.rendered_settings(ROOT, args.env, args.service)
    rows = autoscaling.simulate(autoscaling.profile(args.peak), hpa, nomad, start)
    print(
        f"{args.service} in {args.env}: HPA {hpa.min}..{hpa.max} at {hpa.target_percent}% CPU, "
        f"scale-down window {hpa.scale_down_window_s}s | Nomad target-value {nomad.target} "
        f"every {nomad.evaluation_interval_s}s, "
        f"cooldown {nomad.cooldown_s}s, {nomad.min}..{nomad.max} | start {start}"
    )
    print(f"{'t':>6} {'load':>5}  {'HPA':>3} {'cpu%':>5}  {'Nomad':>5} {'cpu%':>5}  {'static cpu%':>11}")
    previous = None
    for r in rows:
        key = (r.hpa, r.nomad, r.load)
        if key != previous:
            print(
                f"{r.t:>5}s {r.load:>5.2f}  {r.hpa:>3} {r.hpa_cpu:>5.0f}  {r.nomad:>5} {r.nomad_cpu:>5.0f}  "
                f"{r.static_cpu:>11.0f}"
            )
            previous = key
    saturated = {name: autoscaling.saturated_s(rows, attr)
                 for name, attr in (("static", "static_cpu"), ("hpa", "hpa_cpu"),
                                    ("nomad", "nomad_cpu"))}  # fmt: skip
    base = saturated["static"] or 1
    print(
        f"\nseconds at 100% CPU: static {saturated['static']}s (baseline), HPA {saturated['hpa']}s "
        f"({saturated['hpa'] / base:.2f}×), Nomad {saturated['nomad']}s ({saturated['nomad'] / base:.2f}×)"
    )
    crossed = [r for r in rows if not (hpa.min <= r.hpa <= hpa.max and nomad.min <= r.nomad <= nomad.max)]
    print("bounds never crossed" if not crossed else f"BOUNDS CROSSED at t={crossed[0].t}s")
    out = ROOT / "bench" / "results" / f"autoscaling-{args.env}-{args.service}.json"
    out.write_text(json.dumps({"settings": {"hpa": asdict(hpa), "nomad": asdict(nomad), "start": start},
                               "saturated_s": saturated, "rows": [asdict(r) for r in rows]},
                              indent=1) + "\n")  # fmt: skip
    return 1 if crossed else 0


if __name__ == "__main__":
    sys.exit(main())
