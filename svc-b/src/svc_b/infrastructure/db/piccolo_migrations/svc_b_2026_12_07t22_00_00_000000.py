"""Orders carry when they are next due (``next_attempt_at``) and who holds their lease
(``lease_owner``): the sweeper claims due orders, a runner holding one keeps its lease fresh.
Orders placed before have neither: they are due at once (NULL counts as due)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders.next_attempt_at, orders.lease_owner"

COMMON = {
    "primary_key": False,
    "unique": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="svc_b", description=DESCRIPTION)
    manager.add_column(
        table_class_name="OrderRow",
        tablename="svc_b_orders",
        column_name="next_attempt_at",
        db_column_name="next_attempt_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={"default": None, "null": True, "index": False, **COMMON},
        schema=None,
    )
    manager.add_column(
        table_class_name="OrderRow",
        tablename="svc_b_orders",
        column_name="lease_owner",
        db_column_name="lease_owner",
        column_class_name="Varchar",
        column_class=Varchar,
        params={"length": 64, "default": None, "null": True, "index": False, **COMMON},
        schema=None,
    )
    return manager
