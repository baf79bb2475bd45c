"""The piccolo app of Orders' tables (listed with commons' app in the service's registry)."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow, SagaStepRow

APP_NAME = "svc_b"
APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[OrderRow, OrderLineRow, SagaStepRow],
    migration_dependencies=[],
    commands=[],
)
