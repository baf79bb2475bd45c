"""svc-b's app with the whole commons stack, served in-process by Litestar's test client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

import caravan_commons
from svc_b.bootstrap import build_app
from svc_b.config import Settings


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(trace_exporter="none")
    with TestClient(app=build_app(settings)) as test_client:
        yield test_client


def test_liveness_names_the_service(client: TestClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["service"] == "svc-b"


def test_readiness_passes_without_dependencies(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_info_reports_the_commons_version(client: TestClient) -> None:
    response = client.get("/info")
    assert response.status_code == 200
    assert response.json() == {
        "service": "svc-b",
        "version": Settings().service_version,
        "commons": caravan_commons.__version__,
    }


def test_an_unknown_path_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
