"""Tracing: W3C propagation in and out, server spans per route template, JSON-lines exporter."""

from __future__ import annotations

import json
from typing import Any

from litestar import get
from litestar.params import FromPath
from litestar.testing import TestClient
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from caravan_commons.app import create_app
from caravan_commons.settings import ServiceSettings, load_settings
from caravan_commons.tracing import JsonLinesSpanExporter, current_trace_ids, inject_headers, setup_tracing

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@get("/orders/{order_id:str}")
async def order(order_id: FromPath[str]) -> dict[str, Any]:
    if order_id == "bad":
        raise RuntimeError("no")
    headers: dict[str, str] = {}
    inject_headers(headers)
    return {"outgoing": headers, "ids": current_trace_ids()}


def test_incoming_traceparent_continues_the_trace_and_is_injected_outward(settings: ServiceSettings) -> None:
    app = create_app(settings, route_handlers=[order])
    with TestClient(app) as client:
        answer = client.get("/orders/o-1", headers={"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"})
    (span,) = [
        s
        for s in app.state.tracing.memory.get_finished_spans()
        if s.attributes.get("url.path") == "/orders/o-1"
    ]
    assert span.name == "GET /orders/{order_id}"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == PARENT_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN
    assert span.attributes["http.route"] == "/orders/{order_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.resource.attributes["service.name"] == "unit-svc"
    body = answer.json()
    _version, trace_id, span_id, _flags = body["outgoing"]["traceparent"].split("-")
    assert (trace_id, span_id) == (PARENT_TRACE, format(span.context.span_id, "016x"))
    assert body["ids"] == [trace_id, span_id]


def test_without_traceparent_a_new_trace_starts_and_5xx_marks_the_span(settings: ServiceSettings) -> None:
    app = create_app(settings, route_handlers=[order])
    with TestClient(app) as client:
        client.get("/orders/bad")
        client.get("/metrics")
        client.get("/health/live")
    spans = app.state.tracing.memory.get_finished_spans()
    assert [s.name for s in spans] == ["GET /orders/{order_id}"]  # /metrics and /health are not traced
    assert spans[0].parent is None
    assert spans[0].status.status_code is StatusCode.ERROR


def test_json_lines_exporter_writes_one_span_per_line(tmp_path: Any) -> None:
    path = tmp_path / "spans" / "svc.jsonl"
    exporter = JsonLinesSpanExporter(path)
    provider = TracerProvider(resource=Resource.create({"service.name": "svc-t"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    attributes = {"k": "v", "n": 3, "tags": ("a", "b")}
    with (
        tracer.start_as_current_span("outer", attributes=attributes) as outer,
        tracer.start_as_current_span("inner"),
    ):
        pass
    provider.shutdown()
    inner, outer_line = (json.loads(line) for line in path.read_text().splitlines())
    assert outer_line["name"] == "outer" and inner["name"] == "inner"
    assert inner["trace_id"] == outer_line["trace_id"] == format(outer.get_span_context().trace_id, "032x")
    assert inner["parent_span_id"] == outer_line["span_id"]
    assert "parent_span_id" not in outer_line
    assert outer_line["service"] == "svc-t"
    assert outer_line["attributes"] == {"k": "v", "n": 3, "tags": ["a", "b"]}
    assert outer_line["start_ns"] <= inner["start_ns"] <= inner["end_ns"] <= outer_line["end_ns"]
    assert outer_line["status"] == "UNSET" and outer_line["kind"] == "INTERNAL"


def test_exporter_choice_follows_settings(tmp_path: Any) -> None:
    base = {"CARAVAN_SERVICE_NAME": "svc-t"}
    assert setup_tracing(load_settings(ServiceSettings, {**base, "CARAVAN_TRACE_EXPORTER": "none"})) is None
    file_tracing = setup_tracing(
        load_settings(ServiceSettings, {**base, "CARAVAN_TRACE_FILE": str(tmp_path / "t.jsonl")}),
        set_global=False,
    )
    assert isinstance(file_tracing.exporter, JsonLinesSpanExporter)
    file_tracing.shutdown()
    otlp = setup_tracing(
        load_settings(ServiceSettings, {**base, "CARAVAN_OTLP_ENDPOINT": "http://127.0.0.1:9/v1/traces"}),
        set_global=False,
    )
    assert type(otlp.exporter).__name__ == "OTLPSpanExporter"
    otlp.provider.shutdown()


def test_tracing_off_means_no_spans_but_everything_else_works(settings: ServiceSettings) -> None:
    with TestClient(create_app(settings, route_handlers=[order], tracing=False)) as client:
        answer = client.get("/orders/o-2")
    assert answer.status_code == 200
    assert answer.json()["ids"] is None


def _sampled_at(ratio: str) -> Any:
    settings = load_settings(
        ServiceSettings,
        {
            "CARAVAN_SERVICE_NAME": "unit-svc",
            "CARAVAN_TRACE_EXPORTER": "memory",
            "CARAVAN_TRACE_SAMPLE_RATIO": ratio,
        },
    )
    return create_app(settings, route_handlers=[order])


def test_a_request_not_sampled_makes_no_span_but_carries_its_trace_onward() -> None:
    app = _sampled_at("0.0")
    with TestClient(app) as client:
        new = client.get("/orders/o-1").json()
        unsampled_parent = client.get(
            "/orders/o-2", headers={"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-00"}
        ).json()
        sampled_parent = client.get(
            "/orders/o-3", headers={"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"}
        ).json()
    paths = [s.attributes.get("url.path") for s in app.state.tracing.memory.get_finished_spans()]
    assert paths == ["/orders/o-3"]  # a sampled caller's trace is always continued
    _version, trace_id, span_id, flags = new["outgoing"]["traceparent"].split("-")
    assert (
        flags == "00" and len(trace_id) == 32 and trace_id != "0" * 32 and new["ids"] == [trace_id, span_id]
    )
    _, trace_id, span_id, flags = unsampled_parent["outgoing"]["traceparent"].split("-")
    assert (trace_id, flags) == (PARENT_TRACE, "00") and span_id != PARENT_SPAN
    assert int(sampled_parent["outgoing"]["traceparent"].split("-")[3], 16) & 1  # sampled


def test_new_traces_are_sampled_by_the_ratio_on_the_id_they_carry() -> None:
    app = _sampled_at("0.5")
    with TestClient(app) as client:
        answers = [client.get(f"/orders/r-{i}").json() for i in range(200)]
    recorded = {format(s.context.trace_id, "032x") for s in app.state.tracing.memory.get_finished_spans()}
    flagged = {
        a["outgoing"]["traceparent"].split("-")[1]
        for a in answers
        if int(a["outgoing"]["traceparent"].split("-")[3], 16) & 1  # the sampled flag
    }
    assert recorded == flagged  # what is passed on as sampled is exactly what was recorded
    assert 40 < len(recorded) < 160  # about half (the chance of leaving this range is ~1e-17)
    bound = round(0.5 * 2**64)
    assert all(int(t, 16) & (2**64 - 1) < bound for t in recorded)  # the SDK's rule, on the same id
