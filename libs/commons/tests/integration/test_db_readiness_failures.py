"""Readiness of a database that cannot be reached (a loopback port nothing listens on)."""

from __future__ import annotations

import pytest
from upstream_server import unused_port

from caravan_commons.db import Database, NotReadyError
from caravan_commons.piccolo_app import APP_CONFIG


async def test_unreachable_postgres_is_not_ready_and_says_why() -> None:
    db = Database(f"postgresql://nobody:nothing@127.0.0.1:{unused_port()}/none", [APP_CONFIG])
    with pytest.raises(NotReadyError, match="database unreachable"):
        await db.readiness_check()


async def test_unopenable_sqlite_file_is_not_ready(tmp_path) -> None:
    (tmp_path / "a-directory.sqlite3").mkdir()
    db = Database(f"sqlite:///{tmp_path / 'a-directory.sqlite3'}", [APP_CONFIG])
    with pytest.raises(NotReadyError, match="database unreachable"):
        await db.readiness_check()
