"""``python -m svc_a.demo``: load the demo catalogue (``demo_catalogue.toml``, shipped in the
package) into the database named by CARAVAN_DATABASE_URL, whose migrations are applied.

Idempotent: a sku already present is left as it is (price, stock and all). Prints one line,
``demo catalogue: N added, M already present``; on any failure one line on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from caravan_commons import piccolo_app as commons_app
from caravan_commons.db import DATABASE_URL_ENV, Database, DatabaseConfigError
from caravan_commons.errors import ApplicationError
from caravan_commons.money import Money
from svc_a.domain.errors import DuplicateProduct
from svc_a.domain.model import Product
from svc_a.infrastructure.db import piccolo_app
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork
from svc_a.service_layer import handlers

CATALOGUE = "demo_catalogue.toml"


class DemoError(Exception):
    """The catalogue or the database cannot be used; the message is one line."""


@dataclass(frozen=True)
class DemoProduct:
    product: Product
    stock: int


def parse_catalogue(text: str) -> list[DemoProduct]:
    """The products of a catalogue file; :class:`DemoError` naming the entry at fault."""
    try:
        entries = tomllib.loads(text).get("product", [])
    except tomllib.TOMLDecodeError as exc:
        raise DemoError(f"the demo catalogue is not valid TOML: {exc}") from exc
    products = []
    for number, entry in enumerate(entries, start=1):
        try:
            products.append(_product(entry))
        except (KeyError, TypeError, ValueError, ApplicationError) as exc:
            raise DemoError(f"demo catalogue entry {number}: {type(exc).__name__}: {exc}") from exc
    return products


def _product(entry: Mapping[str, Any]) -> DemoProduct:
    price = entry["price"]
    product = Product(
        sku=entry["sku"],
        name=entry["name"],
        description=entry.get("description", ""),
        price=Money(price["amount"], price["currency"]),
        active=entry.get("active", True),
    )
    stock = entry.get("stock", 0)
    if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
        raise ValueError(f"stock must be a whole number >= 0, got {stock!r}")
    return DemoProduct(product, stock)


async def load(database_url: str, products: list[DemoProduct]) -> tuple[int, int]:
    """Add the products that are missing; ``(added, already_present)``."""
    db = Database(database_url, [commons_app.APP_CONFIG, piccolo_app.APP_CONFIG])
    await db.open()
    try:
        pending = await db.pending_migrations()
        if pending:
            raise DemoError(f"the database has {len(pending)} pending migration(s): apply them first")
        added = present = 0
        for item in products:
            try:
                await handlers.add_product(item.product, PiccoloUnitOfWork(db), initial_stock=item.stock)
            except DuplicateProduct:
                present += 1
            else:
                added += 1
        return added, present
    finally:
        await db.close()


def main(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "")
    try:
        if not url:
            raise DemoError(f"{DATABASE_URL_ENV} is not set")
        products = parse_catalogue(resources.files("svc_a").joinpath(CATALOGUE).read_text("utf-8"))
        added, present = asyncio.run(load(url, products))
    except (DemoError, DatabaseConfigError) as exc:
        print(f"svc-a demo: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. the database is unreachable: one line, not a traceback
        print(f"svc-a demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"demo catalogue: {added} added, {present} already present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
