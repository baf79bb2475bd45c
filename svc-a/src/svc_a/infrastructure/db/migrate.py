"""``python -m svc_a.infrastructure.db.migrate``: apply commons' and svc-a's migrations to the
database named by ``CARAVAN_DATABASE_URL`` (exit statuses: caravan_commons.migrate)."""

from __future__ import annotations

import sys

from caravan_commons.migrate import Migrations

MIGRATIONS = Migrations("svc-a", ("caravan_commons", "svc_a"), "svc_a.infrastructure.db.piccolo_conf")
CONF_MODULE = MIGRATIONS.conf_module
migrate, main = MIGRATIONS.migrate, MIGRATIONS.main

if __name__ == "__main__":
    sys.exit(main())
