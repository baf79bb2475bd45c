"""A service built from the whole commons stack, run as a real process by test_client_service_e2e.

create_app (deadline middleware included) + Database (readiness: reachable and migrated) + IdempotencyStore
on POST /reservations. ``python client_target_service.py`` reads CARAVAN_* settings; ``MARKER_DIR``
is where the slow handler records that its work was cancelled.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from piccolo.querystring import QueryString

from caravan_commons.app import create_app
from caravan_commons.client import ServiceClient
from caravan_commons.db import Database, rows_as_dicts
from caravan_commons.deadline import current_deadline
from caravan_commons.discovery import StaticResolver
from caravan_commons.errors import NotFoundError
from caravan_commons.idempotency import IdempotencyStore, fingerprint, require_key
from caravan_commons.piccolo_app import APP_CONFIG
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import WireStruct
from caravan_commons.server import run_service
from caravan_commons.settings import ServiceSettings


class ReservationIn(WireStruct):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class ReservationOut(WireStruct):
    id: str
    sku: str
    quantity: int


def build(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    assert settings.database_url is not None
    db = Database(settings.database_url, [APP_CONFIG])
    store = IdempotencyStore(db.engine)
    markers = Path(os.environ["MARKER_DIR"])
    client = ServiceClient(StaticResolver.from_env(os.environ))

    @asynccontextmanager
    async def effects_table(_app: object) -> AsyncIterator[None]:
        await db.engine.run_ddl(
            "CREATE TABLE IF NOT EXISTS reservations "
            "(id VARCHAR(40) PRIMARY KEY, sku VARCHAR(20), quantity INTEGER)"
        )
        yield

    @post("/reservations", responses=problem_responses(409, 422), status_code=201)
    async def reserve(request: Request) -> Response[bytes]:
        key = require_key(request.headers)
        body = await request.body()
        data = msgspec.json.decode(body, type=ReservationIn)
        fp = fingerprint("POST", request.url.path, body)
        async with db.transaction() as txn, store.begin(key, fp, txn) as slot:
            if slot.replay is not None:
                return slot.replay.to_response()
            out = ReservationOut(id=str(uuid.uuid4()), sku=data.sku, quantity=data.quantity)
            await db.engine.run_querystring(
                QueryString(
                    "INSERT INTO reservations (id, sku, quantity) VALUES ({}, {}, {})",
                    out.id,
                    out.sku,
                    out.quantity,
                )
            )
            encoded = msgspec.json.encode(out)
            slot.complete(201, encoded, {"Location": f"/reservations/{out.id}"})
        return Response(
            encoded,
            status_code=201,
            media_type="application/json",
            headers={"Location": f"/reservations/{out.id}"},
        )

    @get("/reservations/count")
    async def count() -> dict[str, int]:
        rows = rows_as_dicts(
            await db.engine.run_querystring(QueryString("SELECT COUNT(*) AS n FROM reservations"))
        )
        return {"n": int(rows[0]["n"])}

    @get("/products/{sku:str}", responses=problem_responses(404))
    async def product(sku: str) -> dict[str, str]:
        raise NotFoundError(f"no product {sku!r}", sku=sku, hint="check the catalogue")

    @get("/relay")
    async def relay() -> dict[str, str]:
        """Calls the ``echo`` upstream: the deadline and the trace must travel on."""
        answer = await client.get("echo", "/echoed")
        return {"upstream_status": str(answer.status)}

    @get("/slow")
    async def slow() -> dict[str, str]:
        deadline = current_deadline()
        (markers / "slow-started").write_text(deadline.header_value() if deadline else "none")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            (markers / "slow-cancelled").write_text("cancelled")
            raise
        return {"status": "finished"}

    return create_app(
        settings,
        route_handlers=[reserve, count, product, relay, slow],
        readiness_checks={"database": db.readiness_check},
        lifespan=[db.lifespan, effects_table, client.lifespan],
    )


if __name__ == "__main__":
    run_service(build, ServiceSettings)
