"""``python -m svc_b.infrastructure.db.migrate``: apply commons' and Orders' migrations to the
database named by CARAVAN_DATABASE_URL; one line on stderr and exit 1 on failure."""

from __future__ import annotations

import os
import sys

from caravan_commons.db import (
    DATABASE_URL_ENV,
    DatabaseConfigError,
    MigrationError,
    apply_migrations,
    create_engine,
)

APP_NAMES = ["caravan_commons", "svc_b"]
CONF_MODULE = "svc_b.infrastructure.db.piccolo_conf"


def migrate(database_url: str) -> list[str]:
    create_engine(database_url)  # a bad URL fails here, with a clear message
    outputs: list[str] = apply_migrations(APP_NAMES, conf_module=CONF_MODULE, database_url=database_url)
    return outputs


def main(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV)
    if not url:
        print(f"svc-b migrate: {DATABASE_URL_ENV} is not set", file=sys.stderr)
        return 1
    try:
        migrate(url)
    except (DatabaseConfigError, MigrationError) as exc:
        print(f"svc-b migrate: {exc}", file=sys.stderr)
        return 1
    print("svc-b migrate: migrations applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
