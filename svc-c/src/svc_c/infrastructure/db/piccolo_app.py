"""svc-c's piccolo app: its tables and migrations (commons' app carries the idempotency table)."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from svc_c.infrastructure.db.tables import LedgerEntryRow, LedgerMovementRow, PaymentRow

APP_NAME = "svc_c"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[PaymentRow, LedgerMovementRow, LedgerEntryRow],
    migration_dependencies=["caravan_commons.piccolo_app"],
    commands=[],
)
