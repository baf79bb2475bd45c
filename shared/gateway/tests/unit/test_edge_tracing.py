import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from caravan_commons.tracing import JsonLinesSpanExporter
from caravan_gateway.tracing import EdgeTracer, SpanLineWriter

PARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_sampled_spans_reach_the_providers_exporters():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = EdgeTracer(provider, sample_ratio=0.0)
    span = tracer.start(PARENT)
    tracer.end(span, method="GET", route="/api/svc-a", path="/api/svc-a/x", status=503)
    unsampled = tracer.start(None)  # ratio 0: a new root trace is not recorded
    tracer.end(unsampled, method="GET", route="/api/svc-a", path="/api/svc-a/x", status=200)
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "GET /api/svc-a" and finished.kind is SpanKind.SERVER
    assert finished.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert finished.context.span_id == span.span_id
    assert finished.parent.span_id == 0x00F067AA0BA902B7
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes["http.response.status_code"] == 503
    assert finished.resource.attributes["service.name"] == "gateway"


def test_span_lines_match_the_commons_json_lines_format(tmp_path):
    path = tmp_path / "gateway.traces.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
    reference = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(reference))
    sdk_tracer = EdgeTracer(provider, sample_ratio=1.0)
    span = sdk_tracer.start(PARENT)
    sdk_tracer.end(span, method="POST", route="/api/svc-b", path="/api/svc-b/orders", status=201)
    expected = JsonLinesSpanExporter.to_line(reference.get_finished_spans()[0])

    writer = SpanLineWriter(str(path))
    line_tracer = EdgeTracer(provider, sample_ratio=1.0, writer=writer)
    line_tracer.end(span, method="POST", route="/api/svc-b", path="/api/svc-b/orders", status=201)
    assert path.read_bytes() == b""  # buffered until flushed
    writer.close()
    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert set(line) == set(expected)
    for key in ("trace_id", "span_id", "parent_span_id", "name", "kind", "service", "status", "attributes"):
        assert line[key] == expected[key], key
