"""``python -m svc_c.infrastructure.db.migrate``: apply commons' and svc-c's migrations to the
database named by ``CARAVAN_DATABASE_URL``; one line and a non-zero exit on failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from caravan_commons.db import (
    DATABASE_URL_ENV,
    DatabaseConfigError,
    MigrationError,
    apply_migrations,
    create_engine,
)

APPS = ("caravan_commons", "svc_c")
CONF_MODULE = "svc_c.infrastructure.db.piccolo_conf"


def migrate(database_url: str) -> list[str]:
    create_engine(database_url)  # a malformed URL fails here, with a clear message
    return apply_migrations(list(APPS), conf_module=CONF_MODULE, database_url=database_url)


def main(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "").strip()
    if not url:
        print(f"svc-c migrate: {DATABASE_URL_ENV} is not set (e.g. sqlite:///svc-c.sqlite3)", file=sys.stderr)
        return 2
    try:
        migrate(url)
    except (DatabaseConfigError, MigrationError) as exc:
        print(f"svc-c migrate: {exc}", file=sys.stderr)
        return 1
    print(f"svc-c migrate: {', '.join(APPS)} up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
