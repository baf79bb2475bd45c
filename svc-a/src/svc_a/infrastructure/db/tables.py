"""Catalog's piccolo tables. Only the repositories read or write them; they return domain objects.

Prices are two columns (integer minor units + ISO 4217 code); times are epoch milliseconds so
comparisons behave the same on SQLite and Postgres; reservation lines are a small JSON document
(the lines of one order never change after the reservation is made). A reservation made with an
Idempotency-Key keeps the key (``key_id``: the caller-scoped digest, unique — a migration's index,
since SQLite cannot add a UNIQUE column) and the request's ``fingerprint``: the row is the key's
record.
"""

from __future__ import annotations

from piccolo.columns import BigInt, Boolean, Integer, Text, Varchar
from piccolo.table import Table


class ProductRow(Table, tablename="catalog_product"):
    sku = Varchar(length=64, primary_key=True)
    name = Varchar(length=200)
    description = Text(default="")
    price_amount = BigInt()
    price_currency = Varchar(length=3)
    active = Boolean(default=True, index=True)


class StockRow(Table, tablename="catalog_stock"):
    sku = Varchar(length=64, primary_key=True)
    on_hand = Integer(default=0)
    reserved = Integer(default=0)
    version = Integer(default=0)


class ReservationRow(Table, tablename="catalog_reservation"):
    order_id = Varchar(length=100, primary_key=True)
    status = Varchar(length=16, index=True)
    lines = Text()
    expires_at_ms = BigInt(index=True)
    key_id = Varchar(length=64, null=True, default=None)
    fingerprint = Varchar(length=64, null=True, default=None)
