"""A service's migration command, ``python -m <package>.infrastructure.db.migrate``, in one place.

A service declares its :class:`Migrations` (its name, the piccolo apps in the order they apply —
commons' first — and its ``piccolo_conf`` module) and runs :meth:`Migrations.main`::

    MIGRATIONS = Migrations("svc-a", ("caravan_commons", "svc_a"), "svc_a.infrastructure.db.piccolo_conf")

    if __name__ == "__main__":
        sys.exit(MIGRATIONS.main())

Exit status: **0** when every app is up to date (one line on stdout says so); **2** when
``CARAVAN_DATABASE_URL`` is not set (a usage error, as for any bad setting at start-up); **1**
when the URL is malformed or a migration fails. Failures are one line on stderr, prefixed
``<service> migrate:``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from caravan_commons.db import (
    DATABASE_URL_ENV,
    DatabaseConfigError,
    MigrationError,
    apply_migrations,
    create_engine,
)

#: Exit status of a failed migration (or a malformed URL), and of a missing database URL.
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Migrations:
    """What ``migrate`` applies for one service."""

    service: str
    apps: Sequence[str]
    conf_module: str

    def migrate(self, database_url: str) -> list[str]:
        """Apply every app's migrations to ``database_url``; piccolo's output per app."""
        create_engine(database_url)  # a malformed URL fails here, with a clear message
        return apply_migrations(list(self.apps), conf_module=self.conf_module, database_url=database_url)

    def main(self, environ: Mapping[str, str] | None = None) -> int:
        return migrate_main(self, environ)


def migrate_main(migrations: Migrations, environ: Mapping[str, str] | None = None) -> int:
    """The command: migrate the database ``CARAVAN_DATABASE_URL`` names (from ``environ``, default
    the process environment); the exit status as the module says."""
    env = os.environ if environ is None else environ
    prefix = f"{migrations.service} migrate:"
    url = env.get(DATABASE_URL_ENV, "").strip()
    if not url:
        print(
            f"{prefix} {DATABASE_URL_ENV} is not set (e.g. sqlite:///{migrations.service}.sqlite3)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        migrations.migrate(url)
    except (DatabaseConfigError, MigrationError) as exc:
        print(f"{prefix} {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{prefix} {', '.join(migrations.apps)} up to date")
    return 0


__all__ = ["EXIT_FAILED", "EXIT_USAGE", "Migrations", "migrate_main"]
