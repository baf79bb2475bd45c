"""What the controllers get injected: the Catalog's wiring (built once in bootstrap) and a fresh
unit of work per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from caravan_commons.idempotency import IdempotencyStore
from svc_a.service_layer.ports import AbstractUnitOfWork


@dataclass(frozen=True)
class Catalog:
    """The Catalog's collaborators, kept in ``app.state.catalog``."""

    #: a fresh unit of work; ``read_only=True`` for one that only reads
    uow_factory: Callable[..., AbstractUnitOfWork]
    idempotency: IdempotencyStore
    reservation_ttl: timedelta


#: How handlers ask for a fresh unit of work and for the wiring (explicit Litestar markers).
UnitOfWork = NamedDependency[AbstractUnitOfWork]
CatalogDep = NamedDependency[Catalog]


def provide_catalog(state: State) -> Catalog:
    catalog: Catalog = state.catalog
    return catalog


def provide_uow(state: State, request: Request[Any, Any, Any]) -> AbstractUnitOfWork:
    """A fresh unit of work; read-only for GET and HEAD (no write lock, no row locks)."""
    catalog: Catalog = state.catalog
    return catalog.uow_factory(read_only=request.method in ("GET", "HEAD"))
