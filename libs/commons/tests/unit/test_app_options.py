"""create_app repairs Litestar 2's automatic OPTIONS answer: Allow names every method of a path."""

from __future__ import annotations

from litestar import get, post
from litestar.testing import TestClient

from caravan_commons.app import create_app
from caravan_commons.settings import ServiceSettings


@get("/orders", sync_to_thread=False)
def list_orders() -> list[str]:
    return []


@post("/orders", sync_to_thread=False)
def place_order() -> str:
    return "placed"


def test_options_lists_every_method_of_the_path() -> None:
    app = create_app(
        ServiceSettings(service_name="unit-svc"), route_handlers=[list_orders, place_order], tracing=False
    )
    with TestClient(app) as client:
        answer = client.options("/orders")
    assert answer.status_code == 204
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS", "POST"}
