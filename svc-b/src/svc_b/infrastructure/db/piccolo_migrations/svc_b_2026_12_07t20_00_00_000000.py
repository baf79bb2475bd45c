"""Orders keep a keyed digest of the card token they were placed with, for good: the token is
dropped once the payment is authorised, and a repeat of the order's Idempotency-Key with another
card must still be told apart (422)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders.card_digest"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="svc_b", description=DESCRIPTION)

    manager.add_column(
        table_class_name="OrderRow",
        tablename="svc_b_orders",
        column_name="card_digest",
        db_column_name="card_digest",
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
