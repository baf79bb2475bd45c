"""piccolo's conf for svc-c (``PICCOLO_CONF=svc_c.infrastructure.db.piccolo_conf``): the database
named by ``CARAVAN_DATABASE_URL``; only piccolo's CLI (migrations) imports this module."""

from __future__ import annotations

from caravan_commons.db import piccolo_conf

DB, APP_REGISTRY = piccolo_conf(["caravan_commons.piccolo_app", "svc_c.infrastructure.db.piccolo_app"])
