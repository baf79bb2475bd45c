"""``python -m svc_c.infrastructure.db.migrate``: apply commons' and svc-c's migrations to the
database named by ``CARAVAN_DATABASE_URL`` (exit statuses: caravan_commons.migrate)."""

from __future__ import annotations

import sys

from caravan_commons.migrate import Migrations

MIGRATIONS = Migrations("svc-c", ("caravan_commons", "svc_c"), "svc_c.infrastructure.db.piccolo_conf")
CONF_MODULE = MIGRATIONS.conf_module
migrate, main = MIGRATIONS.migrate, MIGRATIONS.main

if __name__ == "__main__":
    sys.exit(main())
