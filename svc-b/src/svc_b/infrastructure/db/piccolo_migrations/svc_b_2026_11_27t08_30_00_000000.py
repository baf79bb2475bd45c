"""Orders keep the card token they were placed with, so recovery can still authorise the payment
after a crash (a processor token, never a card number)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T08:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders.card_token"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="svc_b", description=DESCRIPTION)

    manager.add_column(
        table_class_name="OrderRow",
        tablename="svc_b_orders",
        column_name="card_token",
        db_column_name="card_token",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
