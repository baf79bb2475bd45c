"""What the controllers get injected: the Catalog's wiring (built once in bootstrap) and a fresh
unit of work per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

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
