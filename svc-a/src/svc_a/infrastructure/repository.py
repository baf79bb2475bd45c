"""piccolo implementations of Catalog's repositories: rows in, domain objects out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from caravan_commons.money import Money
from svc_a.domain.errors import ConcurrentUpdate, DuplicateProduct, ReservationConflict
from svc_a.domain.model import ON_HAND_CEILING, Product, Stock
from svc_a.domain.reservation import Line, Reservation, Status
from svc_a.infrastructure.db.tables import ProductRow, ReservationRow, StockRow
from svc_a.service_layer.ports import (
    AbstractProductRepository,
    AbstractReservationRepository,
    AbstractStockRepository,
    KeyClaim,
    Move,
)


def is_unique_violation(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text or "duplicate key" in text


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def product_from(row: dict[str, Any]) -> Product:
    return Product(
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        price=Money(row["price_amount"], row["price_currency"]),
        active=bool(row["active"]),
    )


def product_values(product: Product) -> dict[Any, Any]:
    return {
        ProductRow.name: product.name,
        ProductRow.description: product.description,
        ProductRow.price_amount: product.price.amount,
        ProductRow.price_currency: product.price.currency,
        ProductRow.active: product.active,
    }


class PiccoloProductRepository(AbstractProductRepository):
    async def add(self, product: Product) -> None:
        if await ProductRow.exists().where(ProductRow.sku == product.sku):
            raise DuplicateProduct(f"a product with sku {product.sku} exists", sku=product.sku)
        try:
            await ProductRow.insert(
                ProductRow(
                    sku=product.sku,
                    name=product.name,
                    description=product.description,
                    price_amount=product.price.amount,
                    price_currency=product.price.currency,
                    active=product.active,
                )
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise DuplicateProduct(f"a product with sku {product.sku} exists", sku=product.sku) from exc
            raise

    async def get(self, sku: str) -> Product | None:
        row = await ProductRow.select().where(ProductRow.sku == sku).first()
        return None if row is None else product_from(row)

    async def update(self, product: Product) -> None:
        await ProductRow.update(product_values(product)).where(ProductRow.sku == product.sku)

    async def list(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        active: bool | None = None,
        skus: Sequence[str] | None = None,
        hidden_prefix: str | None = None,
    ) -> list[Product]:
        if skus is not None and not skus:
            return []
        query = ProductRow.select().order_by(ProductRow.sku).limit(limit)
        if after is not None:
            query = query.where(ProductRow.sku > after)
        if active is not None:
            query = query.where(ProductRow.active == active)
        if skus is not None:
            query = query.where(ProductRow.sku.is_in(list(skus)))
        if hidden_prefix is not None:  # skus are upper-case letters, digits and dashes: no wildcards
            query = query.where(ProductRow.sku.not_like(f"{hidden_prefix}%"))
        return [product_from(row) for row in await query]


def stock_from(row: dict[str, Any]) -> Stock:
    return Stock(sku=row["sku"], on_hand=row["on_hand"], reserved=row["reserved"], version=row["version"])


class PiccoloStockRepository(AbstractStockRepository):
    """Stock rows; ``save`` is a conditional UPDATE on the version read (optimistic check) and
    ``get_for_update`` takes row locks on Postgres (``SELECT ... FOR UPDATE``, in sku order so two
    transactions never wait on each other in a cycle). On SQLite the unit of work's
    ``BEGIN IMMEDIATE`` serialises writers instead."""

    def __init__(self, *, lock_rows: bool) -> None:
        self._lock_rows = lock_rows
        self._read: dict[str, int] = {}  # sku -> version as read

    async def add(self, stock: Stock) -> None:
        await StockRow.insert(
            StockRow(sku=stock.sku, on_hand=stock.on_hand, reserved=stock.reserved, version=stock.version)
        )
        self._read[stock.sku] = stock.version

    async def get(self, sku: str) -> Stock | None:
        row = await StockRow.select().where(StockRow.sku == sku).first()
        if row is None:
            return None
        self._read[sku] = row["version"]
        return stock_from(row)

    async def get_for_update(self, skus: Sequence[str]) -> dict[str, Stock]:
        if not skus:
            return {}
        query = StockRow.select().where(StockRow.sku.is_in(sorted(set(skus)))).order_by(StockRow.sku)
        if self._lock_rows:
            query = query.lock_rows("UPDATE")
        stocks = [stock_from(row) for row in await query]
        self._read.update({stock.sku: stock.version for stock in stocks})
        return {stock.sku: stock for stock in stocks}

    async def save(self, stock: Stock) -> None:
        read = self._read.get(stock.sku)
        if read is None:
            raise ValueError(f"stock {stock.sku} was not read in this unit of work")
        changed = (
            await StockRow.update(
                {
                    StockRow.on_hand: stock.on_hand,
                    StockRow.reserved: stock.reserved,
                    StockRow.version: stock.version,
                }
            )
            .where((StockRow.sku == stock.sku) & (StockRow.version == read))
            .returning(StockRow.sku)
        )
        if not changed:
            raise ConcurrentUpdate(f"stock of {stock.sku} changed concurrently; retry", sku=stock.sku)
        self._read[stock.sku] = stock.version

    async def move(self, lines: Sequence[Line], move: Move) -> list[str]:
        if not lines:
            return []
        sql, args = move_statement(lines, move)
        moved = {row["sku"] for row in await StockRow.raw(sql, *args)}
        for sku in moved:
            self._read.pop(sku, None)  # changed without being read: a later save must read again
        return [line.sku for line in lines if line.sku not in moved]


#: Per move: the new values (``q`` is the line's quantity) and the condition the row must meet —
#: the domain's rules (:class:`Stock`) as one conditional statement.
_MOVES: dict[Move, tuple[str, str]] = {
    Move.HOLD: (
        "reserved = reserved + {q}",
        "on_hand - reserved >= {q} AND EXISTS (SELECT 1 FROM catalog_product p "
        "WHERE p.sku = catalog_stock.sku AND p.active)",
    ),
    Move.UNHOLD: ("reserved = reserved - {q}", "reserved >= {q}"),
    Move.SHIP: ("on_hand = on_hand - {q}, reserved = reserved - {q}", "reserved >= {q}"),
    Move.TAKE_BACK: ("on_hand = on_hand + {q}", f"on_hand + {{q}} <= {ON_HAND_CEILING}"),
}


def move_statement(lines: Sequence[Line], move: Move) -> tuple[str, list[str]]:
    """``UPDATE catalog_stock … RETURNING sku`` applying ``move`` to every line's stock that
    meets its condition, and its arguments (skus; quantities are validated integers, written into
    a ``CASE`` on the sku)."""
    skus = [line.sku for line in lines]
    quantity = "(CASE sku " + " ".join(f"WHEN {{}} THEN {int(line.quantity)}" for line in lines) + " END)"
    assign, condition = _MOVES[move]
    sql = (
        f"UPDATE catalog_stock SET {assign.format(q=quantity)}, version = version + 1 "
        f"WHERE sku IN ({', '.join('{}' for _ in lines)}) AND {condition.format(q=quantity)} "
        "RETURNING sku"
    )
    return sql, skus * assign.count("{q}") + skus + skus * condition.count("{q}")


def lines_json(lines: Sequence[Line]) -> str:
    return json.dumps([[line.sku, line.quantity] for line in lines])


def reservation_from(row: dict[str, Any]) -> Reservation:
    return Reservation(
        order_id=row["order_id"],
        lines=tuple(Line(sku, quantity) for sku, quantity in json.loads(row["lines"])),
        expires_at=from_ms(row["expires_at_ms"]),
        status=Status(row["status"]),
    )


class PiccoloReservationRepository(AbstractReservationRepository):
    async def add(self, reservation: Reservation) -> None:
        row = ReservationRow(
            order_id=reservation.order_id,
            status=reservation.status.value,
            lines=lines_json(reservation.lines),
            expires_at_ms=to_ms(reservation.expires_at),
        )
        try:
            await ReservationRow.insert(row)
        except Exception as exc:
            if is_unique_violation(exc):
                raise ReservationConflict(
                    f"order {reservation.order_id} already has a reservation", order_id=reservation.order_id
                ) from exc
            raise

    async def get(self, order_id: str) -> Reservation | None:
        row = await ReservationRow.select().where(ReservationRow.order_id == order_id).first()
        return None if row is None else reservation_from(row)

    async def save(self, reservation: Reservation) -> None:
        await ReservationRow.update({ReservationRow.status: reservation.status.value}).where(
            ReservationRow.order_id == reservation.order_id
        )

    async def add_if_absent(self, reservation: Reservation, key: KeyClaim | None = None) -> bool:
        inserted = await ReservationRow.raw(
            "INSERT INTO catalog_reservation (order_id, status, lines, expires_at_ms, key_id, fingerprint) "
            "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING order_id",
            reservation.order_id,
            reservation.status.value,
            lines_json(reservation.lines),
            to_ms(reservation.expires_at),
            None if key is None else key.key_id,
            None if key is None else key.fingerprint,
        )
        return bool(inserted)

    async def by_key(self, key_id: str) -> tuple[Reservation, str] | None:
        row = await ReservationRow.select().where(ReservationRow.key_id == key_id).first()
        return None if row is None else (reservation_from(row), row["fingerprint"])

    async def transition(
        self, order_id: str, was: Status, becomes: Status, *, live_at: datetime | None = None
    ) -> Reservation | None:
        sql = "UPDATE catalog_reservation SET status = {} WHERE order_id = {} AND status = {}"
        args: list[Any] = [becomes.value, order_id, was.value]
        if live_at is not None:
            sql += " AND expires_at_ms > {}"
            args.append(to_ms(live_at))
        rows = await ReservationRow.raw(sql + " RETURNING order_id, status, lines, expires_at_ms", *args)
        return reservation_from(rows[0]) if rows else None

    async def expired(self, now: datetime, *, limit: int = 100) -> list[Reservation]:
        rows = (
            await ReservationRow.select()
            .where(
                (ReservationRow.status == Status.HELD.value) & (ReservationRow.expires_at_ms <= to_ms(now))
            )
            .order_by(ReservationRow.expires_at_ms)
            .limit(limit)
        )
        return [reservation_from(row) for row in rows]
