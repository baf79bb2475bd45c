"""Autoscaling, shown: the HPA algorithm and the Nomad Autoscaler's target-value strategy on one
load profile with the rendered settings; the bounds are never crossed."""

from __future__ import annotations

from pathlib import Path

import pytest

from caravan_workspace import autoscaling
from caravan_workspace.autoscaling import Hpa, HpaSettings, NomadSettings, TargetValue

REPO = Path(__file__).resolve().parents[4]


def test_hpa_ratio_tolerance_and_scale_down_window():
    hpa = Hpa(HpaSettings(min=1, max=10, target_percent=50, scale_down_window_s=60), start=2)
    assert hpa.step(0, 1.08) == 2  # 54 % / 50 % = 1.08: within the 10 % tolerance
    assert hpa.step(15, 1.2) == 3  # 60 % → ceil(2 × 1.2)
    assert hpa.step(30, 0.3) == 3  # would be 1, but the window still holds the recommendation 3
    assert hpa.step(45, 0.3) == 3
    assert hpa.step(90, 0.3) == 1  # 60 s after the last higher recommendation
    assert hpa.step(95, 5.0) == 1  # between syncs nothing changes


def test_hpa_scale_up_is_limited_by_the_default_policies():
    hpa = Hpa(HpaSettings(min=1, max=20, target_percent=10, scale_down_window_s=0), start=1)
    assert hpa.step(0, 1.0) == 5  # ceil(1 × 10) = 10, but at most +4 pods per 15 s


def test_target_value_threshold_and_cooldown():
    tv = TargetValue(NomadSettings(min=1, max=5, target=50, evaluation_interval_s=10, cooldown_s=60), start=1)
    assert tv.step(0, 0.504) == 1  # 50.4 / 50: within the 1 % threshold
    assert tv.step(10, 1.0) == 2  # factor 2
    assert tv.step(20, 3.0) == 2  # cooling down
    assert tv.step(70, 3.0) == 4  # ceil(2 × 100 / 50)
    assert tv.step(200, 0.1) == 1


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_one_profile_through_both_with_the_rendered_settings(env):
    hpa, nomad, start = autoscaling.rendered_settings(REPO, env, "svc-b")
    assert (hpa.min, hpa.max) == (nomad.min, nomad.max) == (1, 3)  # svc-b/service.toml
    assert hpa.target_percent == nomad.target == 70
    rows = autoscaling.simulate(autoscaling.profile(3.0), hpa, nomad, start)
    assert all(hpa.min <= r.hpa <= hpa.max and nomad.min <= r.nomad <= nomad.max for r in rows)
    peak = [r for r in rows if r.load == 3.0]
    assert all(r.hpa == r.nomad == hpa.max for r in peak[4:])  # both reach the bound, never beyond
    assert rows[-1].hpa == rows[-1].nomad == hpa.min  # and come back down
    assert autoscaling.saturated_s(rows, "hpa_cpu") < autoscaling.saturated_s(rows, "static_cpu")
    assert autoscaling.saturated_s(rows, "nomad_cpu") < autoscaling.saturated_s(rows, "static_cpu")
