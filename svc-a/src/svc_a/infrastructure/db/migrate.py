"""``python -m svc_a.infrastructure.db.migrate``: apply commons' and Catalog's migrations to the
database named by CARAVAN_DATABASE_URL; on failure one line on stderr and exit status 1."""

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

APP_NAMES = ["caravan_commons", "svc_a"]
CONF_MODULE = "svc_a.infrastructure.db.piccolo_conf"


def migrate(database_url: str) -> None:
    create_engine(database_url)  # refuses a malformed URL before piccolo runs
    apply_migrations(APP_NAMES, conf_module=CONF_MODULE, database_url=database_url)


def main(environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "")
    if not url:
        print(f"svc-a migrate: {DATABASE_URL_ENV} is not set", file=sys.stderr)
        return 1
    try:
        migrate(url)
    except (DatabaseConfigError, MigrationError) as exc:
        print(f"svc-a migrate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
