"""piccolo's configuration module (``PICCOLO_CONF``) for the CLI; the URL is CARAVAN_DATABASE_URL."""

from __future__ import annotations

from caravan_commons.db import piccolo_conf

APPS = ["caravan_commons.piccolo_app", "svc_a.infrastructure.db.piccolo_app"]

DB, APP_REGISTRY = piccolo_conf(APPS)
