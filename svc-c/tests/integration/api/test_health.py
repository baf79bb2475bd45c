"""The commons endpoints of svc-c's app: health (with the database check), info, unknown paths."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

import caravan_commons
from svc_c.bootstrap import build_app
from svc_c.config import Settings


def test_liveness_names_the_service(client: TestClient[Litestar]) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["service"] == "svc-c"


def test_ready_on_a_migrated_database(client: TestClient[Litestar]) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"checks": {"database": "ok"}, "status": "ok"}


def test_not_ready_while_migrations_are_pending(tmp_path: Path) -> None:
    app = build_app(Settings(trace_exporter="none", database_url=f"sqlite:///{tmp_path}/empty.sqlite3"))
    with TestClient(app=app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed_checks"] == ["database"]


def test_default_database_is_a_sqlite_file_in_the_working_directory() -> None:
    assert Settings().database_url == "sqlite:///svc-c.sqlite3"


def test_info_reports_the_commons_version(client: TestClient[Litestar]) -> None:
    response = client.get("/info")
    assert response.status_code == 200
    assert response.json() == {
        "service": "svc-c",
        "version": Settings().service_version,
        "commons": caravan_commons.__version__,
    }


def test_an_unknown_path_is_a_problem_document(client: TestClient[Litestar]) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_the_template_copy_is_independent(migrated_template: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(migrated_template, copy)
    assert copy.stat().st_size == migrated_template.stat().st_size


def test_the_ledger_balance_is_a_metric(make_app: Any) -> None:
    with TestClient(app=make_app(metrics_sample_interval_s=0.05)) as client:
        deadline = time.monotonic() + 10  # sampled in the background: the first round may still run
        while "ledger_balanced 1.0" not in (lines := client.get("/metrics").text.splitlines()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert "ledger_balanced 1.0" in lines
    assert any(line.startswith("# TYPE ledger_imbalance_minor gauge") for line in lines)
