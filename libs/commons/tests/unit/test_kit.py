"""The service kit: ``GET /info`` mounted by create_app, and strict body decoding."""

from __future__ import annotations

import msgspec
import pytest
from litestar.testing import TestClient

import caravan_commons
from caravan_commons.app import ServicePlugin, create_app
from caravan_commons.errors import ConflictError
from caravan_commons.idempotency import key_id, once
from caravan_commons.schemas import INTEGRAL_BOUND, WireStruct, strict_decode
from caravan_commons.settings import ServiceSettings


class Line(WireStruct):
    sku: str
    quantity: int
    gift: bool = False


class Order(WireStruct):
    lines: list[Line]


def test_create_app_serves_info_and_documents_it() -> None:
    settings = ServiceSettings(service_name="unit-svc", service_version="1.2.3")
    with TestClient(create_app(settings, tracing=False)) as client:
        answer = client.get("/info")
        schema = client.get("/schema/openapi.json").json()
    assert answer.status_code == 200
    assert answer.json() == {
        "service": "unit-svc",
        "version": "1.2.3",
        "commons": caravan_commons.__version__,
    }
    operation = schema["paths"]["/info"]["get"]
    assert operation["tags"] == ["info"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ServiceInfo"
    }


def test_integral_numbers_count_as_integers_nested() -> None:
    order = strict_decode(b'{"lines": [{"sku": "A-1", "quantity": 3.0}]}', Order)
    assert order == Order(lines=[Line("A-1", 3)]) and type(order.lines[0].quantity) is int


@pytest.mark.parametrize(
    "body",
    [
        b'{"lines": [{"sku": "A-1", "quantity": "3"}]}',  # a numeric string is no integer
        b'{"lines": [{"sku": "A-1", "quantity": 3.5}]}',  # nor a fraction
        b'{"lines": [{"sku": "A-1", "quantity": 1, "gift": 0}]}',  # nor 0 a boolean
        b'{"lines": [{"sku": "A-1", "quantity": 1, "note": "x"}]}',  # unknown fields are refused
    ],
)
def test_what_litestar_would_convert_is_refused(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        strict_decode(body, Order)


def test_integral_floats_at_or_past_the_bound_stay_floats() -> None:
    assert INTEGRAL_BOUND == 2**63
    below = float(2**62)
    assert (
        strict_decode(f'{{"lines": [{{"sku": "A", "quantity": {below!r}}}]}}'.encode(), Order)
        .lines[0]
        .quantity
        == 2**62
    )
    for past in (float(INTEGRAL_BOUND), -float(INTEGRAL_BOUND), 1e300):
        with pytest.raises(msgspec.ValidationError, match="Expected `int`, got `float`"):
            strict_decode(f'{{"lines": [{{"sku": "A", "quantity": {past!r}}}]}}'.encode(), Order)


def test_malformed_json_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        strict_decode(b'{"lines": [', Order)


def test_once_refuses_a_twin_while_the_first_runs_and_frees_the_key_after() -> None:
    with once("k-1", scope="alice") as claim:
        assert claim == key_id("k-1", "alice")
        with pytest.raises(ConflictError) as refused, once("k-1", scope="alice"):
            pass
        assert refused.value.status == 409 and "still being processed" in refused.value.detail
        with once("k-1", scope="bob"), once("k-2", scope="alice"):  # other scopes, other keys: free
            pass
    with pytest.raises(RuntimeError), once("k-1", scope="alice"):
        raise RuntimeError("the effect failed")
    with once("k-1", scope="alice"):  # freed after a failure too
        pass


def test_the_plugin_is_built_before_the_app_and_serves_its_collectors() -> None:
    from prometheus_client import Counter
    from prometheus_client.registry import CollectorRegistry

    settings = ServiceSettings(service_name="unit-svc")
    orders = Counter("unit_orders", "orders seen", registry=CollectorRegistry())
    orders.inc(3)
    kit = ServicePlugin(settings, collectors=[orders], tracing=False, openapi_title="Unit")
    assert kit.signer is None  # no identity key configured: nothing signs outgoing calls
    app = create_app(settings, kit=kit)
    assert app.state.metrics_registry is kit.metrics_registry and app.state.signer is None
    with TestClient(app) as client:
        assert "unit_orders_total 3.0" in client.get("/metrics").text
        assert client.get("/schema/openapi.json").json()["info"]["title"] == "Unit"


def test_a_kit_is_configured_once_and_for_its_own_settings() -> None:
    settings = ServiceSettings(service_name="unit-svc")
    kit = ServicePlugin(settings, tracing=False)
    with pytest.raises(TypeError, match="configure the kit"):
        create_app(settings, kit=kit, openapi_title="Other")
    with pytest.raises(ValueError, match="other settings"):
        create_app(ServiceSettings(service_name="unit-svc"), kit=kit)
