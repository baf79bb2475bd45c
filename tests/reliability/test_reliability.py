"""Kill every service again and again under load: nothing acknowledged is lost, nothing is done
twice, nothing stays stuck, and the books of all three services agree (tests/reconcile.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import chaos
import pytest
from system import System

SECONDS = float(os.environ.get("CARAVAN_RELIABILITY_SECONDS", "60"))
#: The run takes minutes, so it runs on one database: Postgres where the suites have one (CI), else
#: SQLite. The cross-service scenarios run on both.
DATABASE = "postgres" if os.environ.get("CARAVAN_TEST_POSTGRES_DSN") else "sqlite"
pytestmark = pytest.mark.parametrize("system", [DATABASE], indirect=True)


def show(capsys: pytest.CaptureFixture[str], title: str, report: chaos.Report) -> None:
    with capsys.disabled():
        print(f"\n{title}\n{report.table()}")


def test_sigkill_under_load_loses_and_doubles_nothing(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    report = asyncio.run(chaos.run(system, seconds=SECONDS, kill_every=SECONDS / 9))
    show(capsys, f"reliability run, SIGKILL, {system.database}", report)
    verdict = report.verdict
    assert verdict is not None
    assert set(report.kills) == {"svc-a", "svc-b", "svc-c"} and min(report.kills.values()) >= 2
    assert report.acknowledged == report.attempted, "every order is acknowledged in the end (clients retry)"
    assert verdict.lost == []
    assert verdict.duplicated == 0
    assert verdict.stuck == [], chaos.summary(report)
    assert verdict.problems == [], verdict.problems


def test_sigterm_under_load_loses_no_in_flight_request(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    # four graceful restarts or more: svc-a, svc-b, svc-c, svc-a, ...
    report = asyncio.run(
        chaos.run(system, seconds=max(SECONDS / 3, 10), kill_every=max(SECONDS / 15, 2), sig=signal.SIGTERM)
    )
    show(capsys, f"reliability run, SIGTERM, {system.database}", report)
    assert report.verdict is not None and report.verdict.ok, chaos.summary(report)
    assert set(report.kills) == {"svc-a", "svc-b", "svc-c"}
    assert report.dropped_in_flight == 0
