"""`python -m svc_b` as a real process on a free loopback port."""

from __future__ import annotations

from pathlib import Path

from caravan_commons.testing import run_module, served


def test_serves_health_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    with served("svc_b", tmp_path) as service:
        assert service.get("/health/live")["service"] == "svc-b"
    assert service.returncode == 0


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = run_module("svc_b", tmp_path, {"CARAVAN_PORT": "not-a-port"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CARAVAN_PORT" in lines[0]
