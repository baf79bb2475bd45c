"""svc-c's app in-process (Litestar's test client) on a migrated temporary SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from svc_c.bootstrap import build_app
from svc_c.config import Settings
from svc_c.infrastructure.db.migrate import migrate


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated once (commons' and svc-c's migrations); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "svc-c.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


AppFactory = Callable[..., Litestar]


@pytest.fixture
def make_app(migrated_template: Path, tmp_path: Path) -> AppFactory:
    def factory(**settings: Any) -> Litestar:
        path = tmp_path / "svc-c.sqlite3"
        if not path.exists():
            shutil.copy(migrated_template, path)
        return build_app(Settings(trace_exporter="none", database_url=f"sqlite:///{path}", **settings))

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Litestar:
    return make_app(processor_slow_delay_s=0.05)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app=app) as test_client:
        yield test_client
