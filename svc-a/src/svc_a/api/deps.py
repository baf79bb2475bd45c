"""What the controllers get injected: the Catalog's wiring (built once in bootstrap) and a fresh
unit of work per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from caravan_commons.idempotency import IdempotencyStore
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork

T = TypeVar("T")


@dataclass(frozen=True)
class Catalog:
    """The Catalog's collaborators, kept in ``app.state.catalog``."""

    uow_factory: Callable[[], PiccoloUnitOfWork]
    idempotency: IdempotencyStore
    reservation_ttl: timedelta


#: How handlers ask for a fresh unit of work and for the wiring (explicit Litestar markers).
UnitOfWork = NamedDependency[PiccoloUnitOfWork]
CatalogDep = NamedDependency[Catalog]


def provide_catalog(state: State) -> Catalog:
    catalog: Catalog = state.catalog
    return catalog


def provide_uow(state: State, request: Request[Any, Any, Any]) -> PiccoloUnitOfWork:
    """A fresh unit of work; read-only for GET and HEAD (no write lock, no row locks)."""
    catalog: Catalog = state.catalog
    uow = catalog.uow_factory()
    uow.read_only = request.method in ("GET", "HEAD")
    return uow


def _integral_floats_as_ints(value: Any) -> Any:
    """JSON numbers like ``3.0`` as ints (JSON Schema counts them as integers), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    return value


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The request body converted *strictly* to ``type_``.

    Litestar converts ``data`` leniently (``0`` becomes ``false``, ``"5"`` becomes ``5``), while the
    wire types promise exact JSON types; so handlers convert the body again, strictly — except
    that a number with a zero fraction (``3.0``) counts as an integer, as JSON Schema says. A
    mismatch is a ``msgspec.ValidationError``, which commons answers with a 400 problem. ``data``
    stays in the handler's signature for the OpenAPI document (and Litestar's first check).
    """
    raw = msgspec.json.decode(await request.body())
    return msgspec.convert(_integral_floats_as_ints(raw), type_, strict=True)
