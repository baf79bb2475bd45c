"""DatabaseUnitOfWork on a real SQLite file and a real Postgres database: nothing is kept unless
``commit()`` is called; a read-only unit opens no transaction; units do not nest."""

# ruff: noqa: F811 - pytest fixtures imported from db_fixtures are parameters here

from __future__ import annotations

import pytest
from db_fixtures import ENGINES, create_notes_table, database_url, migrated_db, notes_in  # noqa: F401 - fixtures
from piccolo.engine.exceptions import TransactionError
from piccolo.querystring import QueryString

from caravan_commons.db import Database
from caravan_commons.db_unit_of_work import DatabaseUnitOfWork

pytestmark = pytest.mark.parametrize("database_url", ENGINES, indirect=True)


class NotesUnitOfWork(DatabaseUnitOfWork):
    def open_repositories(self) -> None:
        self.opened = True

    async def add(self, note: str) -> None:
        await self.database.engine.run_querystring(QueryString("INSERT INTO notes (note) VALUES ({})", note))


@pytest.fixture
async def db(migrated_db: Database) -> Database:
    return await create_notes_table(migrated_db, "notes")


async def notes(db: Database) -> list[str]:
    return await notes_in(db, "notes")


async def test_only_what_is_committed_is_kept(db: Database) -> None:
    async with NotesUnitOfWork(db) as uow:
        assert uow.opened
        await uow.add("kept")
        await uow.commit()
        await uow.rollback()  # a no-op after commit
    async with NotesUnitOfWork(db) as uow:
        await uow.add("left without commit")
    with pytest.raises(RuntimeError, match="boom"):
        async with NotesUnitOfWork(db) as uow:
            await uow.add("failed")
            raise RuntimeError("boom")
    async with NotesUnitOfWork(db) as uow:
        await uow.add("rolled back")
        await uow.rollback()
        await uow.rollback()  # twice is fine
    assert await notes(db) == ["kept"]


async def test_a_read_only_unit_opens_no_transaction(db: Database) -> None:
    async with NotesUnitOfWork(db, read_only=True) as uow:
        assert uow.opened
        with pytest.raises(RuntimeError, match="no open transaction"):
            _ = uow.transaction
        await uow.rollback()  # nothing to undo


async def test_units_do_not_nest(db: Database) -> None:
    async with NotesUnitOfWork(db) as outer:
        await outer.add("outer")
        with pytest.raises(TransactionError):
            async with NotesUnitOfWork(db):
                pass
        await outer.commit()
    assert await notes(db) == ["outer"]
