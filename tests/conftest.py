"""One whole system per database backend, brought up once per test session and always torn down.

SQLite always; Postgres too when ``CARAVAN_TEST_POSTGRES_DSN`` names a server whose role may
create databases (CI sets it). ``CARAVAN_IT_DATABASES=sqlite`` (or ``postgres``) narrows the run.
``CARAVAN_IT_STATE=<folder>`` runs the suites against a system already brought up there (by
``tests/system.py``'s ``bring_up``; left running afterwards) — for working on the suites.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from system import System, bring_up, tear_down

POSTGRES_DSN_ENV = "CARAVAN_TEST_POSTGRES_DSN"


def _backends() -> list[str]:
    wanted = os.environ.get("CARAVAN_IT_DATABASES", "sqlite,postgres").split(",")
    return [b for b in ("sqlite", "postgres") if b in wanted]


@pytest.fixture(scope="session", params=_backends())
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    attached = os.environ.get("CARAVAN_IT_STATE")
    if attached:
        yield System(
            Path(attached), os.environ.get(POSTGRES_DSN_ENV) if request.param == "postgres" else None
        )
        return
    dsn = None
    if request.param == "postgres":
        dsn = os.environ.get(POSTGRES_DSN_ENV)
        if not dsn:
            pytest.skip(f"{POSTGRES_DSN_ENV} is not set: the Postgres run needs a server (CI sets it)")
    state = tmp_path_factory.mktemp(f"system-{request.param}")
    try:
        yield bring_up(state, dsn)
    finally:
        tear_down(state, dsn)
