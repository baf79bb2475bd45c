"""piccolo's configuration for its CLI (``PICCOLO_CONF``); the database URL is read here, when the
CLI imports this module, from CARAVAN_DATABASE_URL."""

from __future__ import annotations

from caravan_commons.db import piccolo_conf

APPS = ["caravan_commons.piccolo_app", "svc_b.infrastructure.db.piccolo_app"]
DB, APP_REGISTRY = piccolo_conf(APPS)
