"""Autoscaling, shown: one load profile through Kubernetes' HPA algorithm and the Nomad
Autoscaler's target-value strategy, each with the settings rendered for an environment.

The model: an instance has a CPU limit equal to its request; a load of ``L`` (in units of one
instance's full capacity) spread over ``n`` ready instances uses ``min(100, 100 * L / n)`` percent
CPU on each. New instances count from the next step (start-up time is left out).

- HPA (kubernetes.io, "Horizontal Pod Autoscaling"): every sync period (15 s),
  ``desired = ceil(current * utilisation / target)``, no change while the ratio is within the
  10 % tolerance; scale-up limited to max(+4 pods, +100 %) per 15 s (the default policies);
  scale-down takes the highest recommendation of the stabilisation window; clamped to
  ``[minReplicas, maxReplicas]``.
- Nomad Autoscaler target-value: every ``evaluation_interval``, ``factor = metric / target``; no
  action while ``|1 - factor|`` is within the threshold (0.01); else ``ceil(count * factor)``,
  clamped to the group's ``scaling`` min/max; after an action, nothing until ``cooldown`` passed.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

HPA_SYNC_S = 15
HPA_TOLERANCE = 0.1
TARGET_VALUE_THRESHOLD = 0.01


@dataclass(frozen=True)
class HpaSettings:
    min: int
    max: int
    target_percent: float
    scale_down_window_s: int


@dataclass(frozen=True)
class NomadSettings:
    min: int
    max: int
    target: float
    evaluation_interval_s: int
    cooldown_s: int


def utilisation(load: float, replicas: int) -> float:
    return min(100.0, 100.0 * load / replicas)


class Hpa:
    def __init__(self, s: HpaSettings, start: int) -> None:
        self.s = s
        self.replicas = start
        self.recommendations: deque[tuple[float, int]] = deque()
        self.next_sync = 0.0

    def step(self, t: float, load: float) -> int:
        if t < self.next_sync:
            return self.replicas
        self.next_sync = t + HPA_SYNC_S
        ratio = utilisation(load, self.replicas) / self.s.target_percent
        desired = self.replicas if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(self.replicas * ratio)
        desired = max(self.s.min, min(self.s.max, desired))
        self.recommendations.append((t, desired))
        while self.recommendations and self.recommendations[0][0] < t - self.s.scale_down_window_s:
            self.recommendations.popleft()
        if desired < self.replicas:  # scale down to the highest recommendation of the window
            desired = max(r for _, r in self.recommendations)
        else:  # scale up, within the default policies: +4 pods or +100 % per 15 s
            desired = min(desired, max(self.replicas + 4, self.replicas * 2))
        self.replicas = max(self.s.min, min(self.s.max, desired))
        return self.replicas


class TargetValue:
    def __init__(self, s: NomadSettings, start: int) -> None:
        self.s = s
        self.count = start
        self.next_eval = 0.0
        self.cool_until = 0.0

    def step(self, t: float, load: float) -> int:
        if t < self.next_eval or t < self.cool_until:
            return self.count
        self.next_eval = t + self.s.evaluation_interval_s
        factor = utilisation(load, self.count) / self.s.target
        if abs(1 - factor) <= TARGET_VALUE_THRESHOLD:
            return self.count
        desired = max(self.s.min, min(self.s.max, math.ceil(self.count * factor)))
        if desired != self.count:
            self.count = desired
            self.cool_until = t + self.s.cooldown_s
        return self.count


def profile(peak: float = 3.0, step_s: int = 15) -> list[tuple[int, float]]:
    """(time, load): 5 min at a quarter of one instance, a 5 min ramp to ``peak`` instances' worth,
    10 min hold, a 5 min fall, 10 min quiet."""
    phases = [(300, 0.25, 0.25), (300, 0.25, peak), (600, peak, peak), (300, peak, 0.25), (600, 0.25, 0.25)]
    out, t = [], 0
    for length, start, end in phases:
        for i in range(0, length, step_s):
            out.append((t, round(start + (end - start) * i / length, 3)))
            t += step_s
    return out


@dataclass(frozen=True)
class Row:
    t: int
    load: float
    hpa: int
    hpa_cpu: float
    nomad: int
    nomad_cpu: float
    static_cpu: float


def simulate(load: list[tuple[int, float]], hpa: HpaSettings, nomad: NomadSettings, start: int) -> list[Row]:
    """Both autoscalers over the profile; ``static_cpu`` is the baseline: ``start`` instances,
    never scaled."""
    h, n = Hpa(hpa, start), TargetValue(nomad, start)
    rows = []
    for t, value in load:
        # each autoscaler decides on what it measured with the replicas it had
        hr, nr = h.step(t, value), n.step(t, value)
        rows.append(
            Row(t, value, hr, utilisation(value, hr), nr, utilisation(value, nr), utilisation(value, start))
        )
    return rows


def saturated_s(rows: list[Row], attr: str, step_s: int = 15, above: float = 99.9) -> int:
    """Seconds spent at (or near) 100 % CPU: requests queueing."""
    return sum(step_s for r in rows if getattr(r, attr) >= above)


def rendered_settings(root: Path, env: str, name: str) -> tuple[HpaSettings, NomadSettings, int]:
    """The HPA (from ``kubectl kustomize k8s/overlays/<env>``) and the Nomad scaling policy (from
    ``nomad/<env>/json/<name>.json``) as rendered, and the deploy-time count."""
    from caravan_workspace.render.checks import kustomize
    from caravan_workspace.render.jobspec import duration_ns

    (hpa,) = [
        d
        for d in kustomize(root, env)
        if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == name
    ]
    spec = hpa["spec"]
    hpa_settings = HpaSettings(
        min=spec["minReplicas"],
        max=spec["maxReplicas"],
        target_percent=spec["metrics"][0]["resource"]["target"]["averageUtilization"],
        scale_down_window_s=spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
    )
    job = json.loads((root / "nomad" / env / "json" / f"{name}.json").read_text())["Job"]
    (group,) = job["TaskGroups"]
    policy = group["Scaling"]["Policy"]
    (check,) = policy["check"]
    ((body,),) = check.values()
    (strategy,) = body["strategy"]
    nomad_settings = NomadSettings(
        min=group["Scaling"]["Min"],
        max=group["Scaling"]["Max"],
        target=strategy["target-value"][0]["target"],
        evaluation_interval_s=duration_ns(policy["evaluation_interval"]) // 10**9,
        cooldown_s=duration_ns(policy["cooldown"]) // 10**9,
    )
    return hpa_settings, nomad_settings, group["Count"]
