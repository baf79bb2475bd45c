"""svc-a's app in-process (Litestar's TestClient) on a fresh, migrated SQLite file per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from svc_a.bootstrap import build_app
from svc_a.config import Settings
from svc_a.infrastructure.db.migrate import migrate

OPERATOR = {"X-Caravan-Scopes": "operator", "X-Caravan-Customer": "ops"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "db.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def make_client(migrated_template: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient[Any]]]:
    """``make_client(**settings)``: a started client on a copy of the migrated database."""
    started: list[TestClient[Any]] = []

    def make(**overrides: Any) -> TestClient[Any]:
        path = tmp_path / f"db{len(started)}.sqlite3"
        shutil.copy(migrated_template, path)
        settings = Settings(trace_exporter="none", database_url=f"sqlite:///{path}", **overrides)
        client = TestClient(app=build_app(settings))
        client.__enter__()
        started.append(client)
        return client

    yield make
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return make_client()


def add_product(client: TestClient[Any], sku: str, *, stock: int = 10, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": f"Product {sku}", "price": {"amount": 1000, "currency": "EUR"}}
    response = client.post("/products", json={**body, "initial_stock": stock, **fields}, headers=OPERATOR)
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    document = response.json()
    assert document["status"] == status
    if slug is not None:
        assert document["type"].endswith("/" + slug), document
    return document
