"""Catalog's use cases: plain async functions ``(arguments, uow, ...)``; one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from svc_a.domain import inventory
from svc_a.domain.errors import ReservationNotFound, UnknownSku
from svc_a.domain.model import GATE_SKU_PREFIX, Product, Stock, validate_sku
from svc_a.domain.reservation import Line, Reservation, normalise_lines, validate_order_id
from svc_a.service_layer.ports import AbstractUnitOfWork

Clock = Callable[[], datetime]
DEFAULT_TTL = timedelta(minutes=15)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def add_product(product: Product, uow: AbstractUnitOfWork, *, initial_stock: int = 0) -> Product:
    """A new product and its (empty, or ``initial_stock``) stock row, together."""
    async with uow:
        await uow.products.add(product)
        stock = Stock(product.sku)
        if initial_stock:
            stock.restock(initial_stock)
        await uow.stocks.add(stock)
        await uow.commit()
    return product


async def get_product(sku: str, uow: AbstractUnitOfWork) -> Product:
    async with uow:
        product = await uow.products.get(validate_sku(sku))
    if product is None:
        raise UnknownSku(f"no product with sku {sku}", sku=sku)
    return product


async def list_products(
    uow: AbstractUnitOfWork,
    *,
    after: str | None = None,
    limit: int = 50,
    active: bool | None = None,
    skus: Sequence[str] | None = None,
) -> tuple[list[Product], str | None]:
    """A page of products by sku and the cursor of the next page (``None`` on the last page).
    Products in the gate namespace are listed only when ``skus`` names them."""
    if after is not None:
        validate_sku(after)
    wanted = None if skus is None else sorted({validate_sku(sku) for sku in skus})
    hidden = GATE_SKU_PREFIX if wanted is None else None
    async with uow:
        page = await uow.products.list(
            after=after, limit=limit + 1, active=active, skus=wanted, hidden_prefix=hidden
        )
    if len(page) > limit:
        return page[:limit], page[limit - 1].sku
    return page, None


async def change_product(sku: str, change: Callable[[Product], Product], uow: AbstractUnitOfWork) -> Product:
    """Apply ``change`` (a validated copy, same sku) to the product and save it."""
    async with uow:
        product = await uow.products.get(validate_sku(sku))
        if product is None:
            raise UnknownSku(f"no product with sku {sku}", sku=sku)
        changed = change(product)
        if changed.sku != product.sku:
            raise ValueError("a product's sku never changes")
        if changed != product:
            await uow.products.update(changed)
            await uow.commit()
    return changed


async def get_stock(sku: str, uow: AbstractUnitOfWork) -> Stock:
    async with uow:
        stock = await uow.stocks.get(validate_sku(sku))
    if stock is None:
        raise UnknownSku(f"no product with sku {sku}", sku=sku)
    return stock


async def restock(sku: str, quantity: int, uow: AbstractUnitOfWork) -> Stock:
    async with uow:
        stocks = await uow.stocks.get_for_update([validate_sku(sku)])
        if sku not in stocks:
            raise UnknownSku(f"no product with sku {sku}", sku=sku)
        stocks[sku].restock(quantity)
        await uow.stocks.save(stocks[sku])
        await uow.commit()
    return stocks[sku]


async def reserve(
    order_id: str,
    lines: Iterable[Line],
    uow: AbstractUnitOfWork,
    *,
    ttl: timedelta = DEFAULT_TTL,
    clock: Clock = utc_now,
) -> tuple[Reservation, bool]:
    """Hold every line for ``order_id`` (all or nothing); ``(reservation, created)``."""
    async with uow:
        reservation, created = await reserve_within(order_id, lines, uow, ttl=ttl, clock=clock)
        if created:
            await uow.commit()
    return reservation, created


async def reserve_within(
    order_id: str,
    lines: Iterable[Line],
    uow: AbstractUnitOfWork,
    *,
    ttl: timedelta = DEFAULT_TTL,
    clock: Clock = utc_now,
) -> tuple[Reservation, bool]:
    """:func:`reserve` inside a unit of work the caller opened and commits (so that something else,
    e.g. an Idempotency-Key record, is written in the same transaction)."""
    wanted = normalise_lines(lines)
    validate_order_id(order_id)
    skus = [line.sku for line in wanted]
    stocks = await uow.stocks.get_for_update(skus)  # locks first
    existing = await uow.reservations.get(order_id)  # then read: a concurrent twin is visible
    inactive: set[str] = set()
    if existing is None:
        products = await uow.products.list(skus=skus, limit=len(skus))
        inactive = {product.sku for product in products if not product.active}
    reservation, created = inventory.reserve(
        existing, order_id, wanted, stocks, now=clock(), ttl=ttl, inactive=inactive
    )
    if created:
        for line in reservation.lines:
            await uow.stocks.save(stocks[line.sku])
        await uow.reservations.add(reservation)
    return reservation, created


async def _settle(order_id: str, uow: AbstractUnitOfWork, clock: Clock, *, commit: bool) -> Reservation:
    async with uow:
        found = await uow.reservations.get(validate_order_id(order_id))
        if found is None:
            raise ReservationNotFound(f"no reservation for order {order_id}", order_id=order_id)
        stocks = await uow.stocks.get_for_update([line.sku for line in found.lines])
        reservation = await uow.reservations.get(order_id)  # again, now that its stock is locked
        assert reservation is not None
        if commit:
            changed = inventory.commit(reservation, stocks, now=clock())
        else:
            changed = inventory.release(reservation, stocks)
        if changed:
            for line in reservation.lines:
                await uow.stocks.save(stocks[line.sku])
            await uow.reservations.save(reservation)
            await uow.commit()
    return reservation


async def commit_reservation(
    order_id: str, uow: AbstractUnitOfWork, *, clock: Clock = utc_now
) -> Reservation:
    return await _settle(order_id, uow, clock, commit=True)


async def release_reservation(
    order_id: str, uow: AbstractUnitOfWork, *, clock: Clock = utc_now
) -> Reservation:
    return await _settle(order_id, uow, clock, commit=False)


async def get_reservation(order_id: str, uow: AbstractUnitOfWork) -> Reservation:
    async with uow:
        reservation = await uow.reservations.get(validate_order_id(order_id))
    if reservation is None:
        raise ReservationNotFound(f"no reservation for order {order_id}", order_id=order_id)
    return reservation


async def sweep_expired(uow_factory: Callable[[], AbstractUnitOfWork], *, clock: Clock = utc_now) -> int:
    """Release every held reservation past its expiry, one transaction each; how many were released."""
    released = 0
    async with uow_factory() as uow:
        due = [r.order_id for r in await uow.reservations.expired(clock())]
    for order_id in due:
        uow = uow_factory()
        async with uow:
            found = await uow.reservations.get(order_id)
            if found is None:
                continue
            stocks = await uow.stocks.get_for_update([line.sku for line in found.lines])
            reservation = await uow.reservations.get(order_id)
            if reservation is not None and inventory.expire(reservation, stocks, now=clock()):
                for line in reservation.lines:
                    await uow.stocks.save(stocks[line.sku])
                await uow.reservations.save(reservation)
                await uow.commit()
                released += 1
    return released
