"""A reservation made with an Idempotency-Key keeps the key and the request's fingerprint (the row
is the key's record: one ``INSERT … ON CONFLICT DO NOTHING`` claims both the order and the key).

Plain SQL that both engines take: SQLite cannot add a UNIQUE column, so the key's uniqueness is an
index (piccolo runs raw steps before its own, hence no ``add_column`` here)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reservations keep their Idempotency-Key"

FORWARDS = (
    "ALTER TABLE catalog_reservation ADD COLUMN key_id VARCHAR(64) NULL DEFAULT NULL",
    "ALTER TABLE catalog_reservation ADD COLUMN fingerprint VARCHAR(64) NULL DEFAULT NULL",
    "CREATE UNIQUE INDEX catalog_reservation_key_id ON catalog_reservation (key_id)",
)
BACKWARDS = (
    "DROP INDEX catalog_reservation_key_id",
    "ALTER TABLE catalog_reservation DROP COLUMN fingerprint",
    "ALTER TABLE catalog_reservation DROP COLUMN key_id",
)


async def _run(statements: tuple[str, ...]) -> None:
    from svc_a.infrastructure.db.tables import ReservationRow

    for sql in statements:
        await ReservationRow.raw(sql)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="svc_a", description=DESCRIPTION)

    async def forwards_sql() -> None:
        await _run(FORWARDS)

    async def backwards_sql() -> None:
        await _run(BACKWARDS)

    manager.add_raw(forwards_sql)
    manager.add_raw_backwards(backwards_sql)
    return manager
