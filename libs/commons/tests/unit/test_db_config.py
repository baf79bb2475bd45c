"""Database URL → piccolo engine (no connection is made)."""

from __future__ import annotations

from pathlib import Path

import pytest
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from caravan_commons.db import DatabaseConfigError, create_engine, piccolo_conf, sqlite_path


def test_relative_sqlite_paths_resolve_against_the_base_dir(tmp_path: Path) -> None:
    engine = create_engine("sqlite:///svc-a.sqlite3", base_dir=tmp_path, busy_timeout=2.5)
    assert isinstance(engine, SQLiteEngine)
    assert engine.path == str(tmp_path / "svc-a.sqlite3")
    assert engine.connection_kwargs["timeout"] == 2.5


def test_absolute_sqlite_paths() -> None:
    assert sqlite_path("sqlite:////var/lib/caravan/svc.sqlite3") == Path("/var/lib/caravan/svc.sqlite3")


def test_postgres_urls_make_a_postgres_engine(recwarn: pytest.WarningsRecorder) -> None:
    engine = create_engine("postgresql://u:p@127.0.0.1:1/svc_a")
    assert isinstance(engine, PostgresEngine)
    assert engine.config == {"dsn": "postgresql://u:p@127.0.0.1:1/svc_a"}
    assert isinstance(create_engine("postgres://u@127.0.0.1:1/x"), PostgresEngine)
    # piccolo's own engine would have tried to connect (and warned) while being constructed
    assert not [w for w in recwarn if "server version" in str(w.message)]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite://", "sqlite:///relative"),
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("just-a-file.db", "unsupported scheme '(none)'"),
        ("postgresql:///nohost", "needs a host"),
    ],
)
def test_unusable_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(DatabaseConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_engine(url)


def test_piccolo_conf_reads_the_url_it_is_given() -> None:
    engine, registry = piccolo_conf(
        ["caravan_commons.piccolo_app"], {"CARAVAN_DATABASE_URL": "sqlite:///x.db"}
    )
    assert isinstance(engine, SQLiteEngine)
    assert registry.get_app_config("caravan_commons") is not None
    with pytest.raises(DatabaseConfigError, match="CARAVAN_DATABASE_URL is not set"):
        piccolo_conf(["caravan_commons.piccolo_app"], {})
