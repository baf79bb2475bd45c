"""``python -m svc_a.demo``: loads the packaged demo catalogue idempotently; failures are one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from caravan_commons import piccolo_app as commons_app
from caravan_commons.db import Database
from caravan_commons.testing import run_module
from svc_a.demo import DemoError, parse_catalogue
from svc_a.infrastructure.db import piccolo_app
from svc_a.infrastructure.db.migrate import migrate
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork


def catalogue_of(url: str) -> dict[str, tuple[int, int]]:
    async def read() -> dict[str, tuple[int, int]]:
        db = Database(url, [commons_app.APP_CONFIG, piccolo_app.APP_CONFIG])
        await db.open()
        try:
            async with PiccoloUnitOfWork(db) as uow:
                products = await uow.products.list(limit=100)
                found = {}
                for product in products:
                    stock = await uow.stocks.get(product.sku)
                    assert stock is not None and product.price.currency == "EUR" and product.active
                    found[product.sku] = (product.price.amount, stock.on_hand)
                return found
        finally:
            await db.close()

    return asyncio.run(read())


def test_loads_the_catalogue_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite3"
    migrate(url)
    env = {"CARAVAN_DATABASE_URL": url}
    first = run_module("svc_a.demo", tmp_path, env)
    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        "demo catalogue: 8 added, 0 already present\n",
        "",
    )
    loaded = catalogue_of(url)
    assert len(loaded) == 8 and all(on_hand == 1_000_000 for _, on_hand in loaded.values())
    second = run_module("svc_a.demo", tmp_path, env)
    assert (second.returncode, second.stdout) == (0, "demo catalogue: 0 added, 8 already present\n")
    assert catalogue_of(url) == loaded


@pytest.mark.parametrize(
    "env,fragment",
    [
        ({}, "CARAVAN_DATABASE_URL is not set"),
        ({"CARAVAN_DATABASE_URL": "mysql://localhost/x"}, "unsupported scheme"),
        ({"CARAVAN_DATABASE_URL": "sqlite:///unmigrated.sqlite3"}, "pending migration"),
    ],
)
def test_a_failure_is_one_line_and_exit_1(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    result = run_module("svc_a.demo", tmp_path, env)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[[product]\n", "not valid TOML"),
        ('[[product]]\nsku = "tent"\nname = "T"\nprice = { amount = 1, currency = "EUR" }\n', "entry 1"),
        ('[[product]]\nsku = "TENT"\nname = "T"\nprice = { amount = 1, currency = "ZZZ" }\n', "entry 1"),
        ('[[product]]\nsku = "TENT"\nname = "T"\n', "entry 1"),
        (
            '[[product]]\nsku = "TENT"\nname = "T"\nprice = { amount = 1, currency = "EUR" }\nstock = -1\n',
            "entry 1",
        ),
    ],
)
def test_a_bad_catalogue_names_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(DemoError, match=fragment):
        parse_catalogue(text)
