"""Catalog's use cases: plain async functions ``(arguments, uow, ...)``; one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from caravan_commons.errors import UnprocessableError
from svc_a.domain import inventory
from svc_a.domain.errors import ConcurrentUpdate, ReservationConflict, ReservationNotFound, UnknownSku
from svc_a.domain.model import GATE_SKU_PREFIX, Product, Stock, validate_sku
from svc_a.domain.reservation import Line, Reservation, Status, normalise_lines, validate_order_id
from svc_a.service_layer.ports import AbstractUnitOfWork, KeyClaim, Move

Clock = Callable[[], datetime]
DEFAULT_TTL = timedelta(minutes=15)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reserved:
    """What :func:`reserve` did: the reservation, whether this request created it, and whether the
    answer replays the first one of its Idempotency-Key."""

    reservation: Reservation
    created: bool
    replayed: bool = False


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
    """:func:`reserve_keyed` without a key: ``(reservation, created)``."""
    done = await reserve_keyed(order_id, lines, uow, ttl=ttl, clock=clock)
    return done.reservation, done.created


async def reserve_keyed(
    order_id: str,
    lines: Iterable[Line],
    uow: AbstractUnitOfWork,
    *,
    ttl: timedelta = DEFAULT_TTL,
    clock: Clock = utc_now,
    key: KeyClaim | None = None,
) -> Reserved:
    """Hold every line for ``order_id`` (all or nothing), in one transaction of two statements:
    the reservation inserted unless the order has one (``INSERT … ON CONFLICT DO NOTHING``), then
    every line's stock held by one conditional ``UPDATE`` (no row is read or locked first).

    Idempotent per order id: the same lines again answer the existing reservation (not created);
    other lines are a :class:`ReservationConflict`. With ``key`` (an Idempotency-Key) the key is
    kept on the reservation it creates: the same key and request again is a replay of that first
    answer, the same key with another request an :class:`UnprocessableError`."""
    wanted = normalise_lines(lines)
    validate_order_id(order_id)
    async with uow:
        reservation = inventory.new_reservation(order_id, wanted, now=clock(), ttl=ttl)
        if await uow.reservations.add_if_absent(reservation, key):
            short = await uow.stocks.move(wanted, Move.HOLD)
            if short:
                await _refuse(order_id, wanted, uow, clock, ttl)
            await uow.commit()
            return Reserved(reservation, created=True)
        if key is not None:
            keyed = await uow.reservations.by_key(key.key_id)
            if keyed is not None:
                first, fingerprint = keyed
                if fingerprint != key.fingerprint:
                    raise UnprocessableError(
                        "this Idempotency-Key was already used with a different request; use a new key"
                    )
                # the first answer, as it was: the reservation when it was created (held)
                return Reserved(replace(first, status=Status.HELD), created=True, replayed=True)
        existing = await uow.reservations.get(order_id)
        if existing is None:  # the conflict was the key's, on a reservation gone since: retry
            raise ConcurrentUpdate(f"the reservation of order {order_id} changed concurrently; retry")
        repeat, _ = inventory.reserve(existing, order_id, wanted, {}, now=clock(), ttl=ttl)
        return Reserved(repeat, created=False)


async def _refuse(
    order_id: str, wanted: tuple[Line, ...], uow: AbstractUnitOfWork, clock: Clock, ttl: timedelta
) -> NoReturn:
    """Why the stock of ``wanted`` could not be held, as the domain says it (the unit of work
    rolls back): :class:`UnknownSku`, :class:`ProductInactive` or :class:`OutOfStock`."""
    skus = [line.sku for line in wanted]
    stocks = await uow.stocks.get_for_update(skus)
    products = await uow.products.list(skus=skus, limit=len(skus))
    inactive = {product.sku for product in products if not product.active}
    inventory.reserve(None, order_id, wanted, stocks, now=clock(), ttl=ttl, inactive=inactive)
    raise ConcurrentUpdate(f"the stock of order {order_id}'s lines changed concurrently; retry")


_COMMIT = ((Status.HELD, Status.COMMITTED, Move.SHIP),)
_RELEASE = ((Status.HELD, Status.RELEASED, Move.UNHOLD), (Status.COMMITTED, Status.RELEASED, Move.TAKE_BACK))


async def _settle(order_id: str, uow: AbstractUnitOfWork, clock: Clock, *, commit: bool) -> Reservation:
    """Commit or release in one transaction of two statements: the reservation's status changed
    by a conditional ``UPDATE … RETURNING`` (held → committed if not expired; held → released;
    committed → released), then its stock moved by one conditional ``UPDATE``. When no status
    changed, the reservation as it is says why (a repeat: answered as it is; or an error)."""
    validate_order_id(order_id)
    now = clock()
    async with uow:
        for was, becomes, move in _COMMIT if commit else _RELEASE:
            changed = await uow.reservations.transition(
                order_id, was, becomes, live_at=now if commit else None
            )
            if changed is None:
                continue
            short = await uow.stocks.move(changed.lines, move)
            if short:
                raise ReservationConflict(
                    f"stock of {', '.join(short)} cannot take the units back", skus=short
                )
            await uow.commit()
            return changed
        found = await uow.reservations.get(order_id)
        if found is None:
            raise ReservationNotFound(f"no reservation for order {order_id}", order_id=order_id)
        if commit:
            inventory.commit(found, {}, now=now)  # released or expired: ReservationConflict
        elif found.status is not Status.RELEASED:
            raise ConcurrentUpdate(f"the reservation of order {order_id} changed concurrently; retry")
        return found


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
