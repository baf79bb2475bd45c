"""The saga's progress is stored on the order's row (one write per saga transition): the step it
is at, its outcome, every step ever started, a failure's detail."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders carry the saga's progress"


def _params(default: str, length: int | None) -> dict[str, object]:
    params: dict[str, object] = {
        "default": default,
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
    }
    if length is not None:
        params["length"] = length
    return params


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="svc_b", description=DESCRIPTION)
    for name, column_class, default, length in (
        ("step", Varchar, "", 32),
        ("step_outcome", Varchar, "done", 16),
        ("steps_started", Varchar, "", 256),
        ("step_detail", Text, "", None),
    ):
        manager.add_column(
            table_class_name="OrderRow",
            tablename="svc_b_orders",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=_params(default, length),
            schema=None,
        )
    return manager
