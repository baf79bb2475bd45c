"""The piccolo app of commons' own tables; a service lists it in its ``APP_REGISTRY``.

Its migrations create ``caravan_idempotency``; apply them with the service's, e.g.
``apply_migrations(["caravan_commons", "svc_a"], conf_module=...)`` (see :mod:`caravan_commons.db`).
"""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from caravan_commons.tables import IdempotencyRecord

APP_CONFIG = AppConfig(
    app_name="caravan_commons",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[IdempotencyRecord],
    migration_dependencies=[],
    commands=[],
)
