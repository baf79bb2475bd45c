"""svc-a's app with the whole commons stack, served in-process by Litestar's test client."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

import caravan_commons
from svc_a.bootstrap import build_app
from svc_a.config import Settings


def test_liveness_names_the_service(client: TestClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["service"] == "svc-a"


def test_readiness_checks_the_migrated_database(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"checks": {"database": "ok"}, "status": "ok"}


def test_an_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(trace_exporter="none", database_url=f"sqlite:///{tmp_path}/empty.sqlite3")
    with TestClient(app=build_app(settings)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed_checks"] == ["database"]


def test_every_path_with_several_methods_allows_them_all(client: TestClient) -> None:
    """Litestar 2's OPTIONS answer lists them all once repaired (commons' create_app)."""
    assert client.options("/products").headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/products/TENT-2P").headers["allow"] == "GET, OPTIONS, PATCH"


def test_info_reports_the_commons_version(client: TestClient) -> None:
    response = client.get("/info")
    assert response.status_code == 200
    assert response.json() == {
        "service": "svc-a",
        "version": Settings().service_version,
        "commons": caravan_commons.__version__,
    }


def test_an_unknown_path_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
