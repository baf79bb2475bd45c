"""The piccolo app of Catalog's tables (listed after commons' in the service's APP_REGISTRY)."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from svc_a.infrastructure.db.tables import ProductRow, ReservationRow, StockRow

APP_NAME = "svc_a"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[ProductRow, StockRow, ReservationRow],
    migration_dependencies=[],
    commands=[],
)
