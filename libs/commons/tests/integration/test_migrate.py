"""The migration command every service runs as ``python -m <package>.infrastructure.db.migrate``:
its exit statuses (0 done, 2 no database URL, 1 a bad URL or a failed migration) and one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from db_fixtures import CONF_MODULE, write_conf

from caravan_commons.migrate import EXIT_FAILED, EXIT_USAGE, Migrations, migrate_main

MIGRATIONS = Migrations("svc-z", ("caravan_commons",), CONF_MODULE)


def test_without_a_database_url_it_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_main(MIGRATIONS, {"CARAVAN_DATABASE_URL": "  "}) == EXIT_USAGE == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("svc-z migrate: CARAVAN_DATABASE_URL is not set")


def test_an_unsupported_url_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert MIGRATIONS.main({"CARAVAN_DATABASE_URL": "mysql://somewhere/db"}) == EXIT_FAILED == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "svc-z migrate:" in err and "unsupported scheme 'mysql'" in err


def test_it_applies_every_app_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(write_conf(tmp_path))
    url = f"sqlite:///{tmp_path / 'z.sqlite3'}"
    assert MIGRATIONS.main({"CARAVAN_DATABASE_URL": url}) == 0
    assert capsys.readouterr().out.strip() == "svc-z migrate: caravan_commons up to date"
    assert MIGRATIONS.main({"CARAVAN_DATABASE_URL": url}) == 0  # idempotent
