"""A payment keeps a digest of its authorising request (``request_digest``): its row is the
authorisation key's record, and the same key with another card is refused without keeping the card.

Plain SQL both engines take (piccolo runs raw steps before its own)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments keep a digest of their authorising request"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="svc_c", description=DESCRIPTION)

    async def add_digest() -> None:
        from svc_c.infrastructure.db.tables import PaymentRow

        await PaymentRow.raw("ALTER TABLE payments ADD COLUMN request_digest VARCHAR(64) NULL DEFAULT NULL")

    async def drop_digest() -> None:
        from svc_c.infrastructure.db.tables import PaymentRow

        await PaymentRow.raw("ALTER TABLE payments DROP COLUMN request_digest")

    manager.add_raw(add_digest)
    manager.add_raw_backwards(drop_digest)
    return manager
