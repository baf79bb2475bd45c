"""A small service built with create_app, run as a real process by the integration tests.

``python core_service.py`` reads CARAVAN_* settings and serves under granian (run_service).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.params import FromPath, FromQuery, JSONBody
from loguru import logger

from caravan_commons.app import create_app
from caravan_commons.errors import ConflictError, NotFoundError
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import WireStruct
from caravan_commons.server import run_service
from caravan_commons.settings import ServiceSettings


class Item(WireStruct):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern="^[a-z0-9-]+$")]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)]


ITEMS: dict[str, Item] = {}


@get("/items/{sku:str}", responses=problem_responses(404))
async def get_item(sku: FromPath[str]) -> Item:
    item = ITEMS.get(sku)
    if item is None:
        raise NotFoundError(f"no item {sku!r}")
    return item


@post("/items", responses=problem_responses(409))
async def add_item(data: JSONBody[Item]) -> Item:
    if data.sku in ITEMS:
        raise ConflictError(f"item {data.sku!r} exists")
    ITEMS[data.sku] = data
    return data


@get("/slow", include_in_schema=False)
async def slow(seconds: FromQuery[float] = 1.0) -> str:
    logger.info("slow request started")
    await asyncio.sleep(seconds)
    logger.info("slow request finished")
    return "done"


@get("/log", include_in_schema=False)
async def log_something() -> str:
    logger.bind(order_id="o-1").info("hello from a handler")
    return "logged"


#: What /leave-behind left: nothing refers to it from outside its own reference cycle.
_LEFT: list[object] = []


@post("/leave-behind/{what:str}", include_in_schema=False)
async def leave_behind(what: FromPath[str]) -> str:
    """Leave what a cancelled request can leave behind: an open aiosqlite connection that only a
    reference cycle keeps (``connection``), or a thread that never ends (``thread``)."""
    if what == "connection":
        import aiosqlite

        cycle: dict[str, object] = {}
        cycle["self"] = cycle
        cycle["connection"] = await aiosqlite.connect(os.environ["CORE_SERVICE_SQLITE"])
        await cycle["connection"].execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
        del cycle
    else:
        threading.Thread(target=threading.Event().wait, name="stuck-worker").start()
    return "left"


def build(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    return create_app(settings, route_handlers=[get_item, add_item, slow, log_something, leave_behind])


def build_undocumented(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    """The same routes on a plain Litestar app with only the problem mapping: a negative control
    for the OpenAPI contract test (its error answers are not documented as problem+json)."""
    from litestar import Litestar

    from caravan_commons.problems import problem_details_plugin

    return Litestar(route_handlers=[get_item, add_item], plugins=[problem_details_plugin()])


if __name__ == "__main__":
    undocumented = os.environ.get("CORE_SERVICE_UNDOCUMENTED") == "1"
    run_service(build_undocumented if undocumented else build, ServiceSettings)
