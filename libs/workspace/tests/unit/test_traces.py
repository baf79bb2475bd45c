"""Traces assembled from the runtime's span files, found by id or by an order id, drawn as text."""

import json
from pathlib import Path

from caravan_workspace.traces import find_trace, read_spans, waterfall

T1, T2 = "a" * 32, "b" * 32


def span(trace, sid, parent, service, name, start, end, **attributes):
    line = {"trace_id": trace, "span_id": sid, "name": name, "kind": "SERVER", "service": service,
            "start_ns": start, "end_ns": end, "attributes": attributes}  # fmt: skip
    if parent:
        line["parent_span_id"] = parent
    return json.dumps(line)


def write(folder: Path) -> None:
    folder.mkdir()
    (folder / "gateway-1.jsonl").write_text(
        span(T1, "g1", None, "gateway", "POST /api/svc-b", 0, 10_000_000) + "\n"
    )
    (folder / "svc-b-1.jsonl").write_text(
        "\n".join([
            span(T1, "b1", "g1", "svc-b", "POST /orders", 1_000_000, 9_000_000),
            span(T1, "b2", "b1", "svc-b", "POST svc-a", 2_000_000, 3_000_000,
                 **{"url.path": "/reservations"}),
            span(T1, "b3", "b1", "svc-b", "POST svc-a", 7_000_000, 8_000_000,
                 **{"url.path": "/reservations/o-42/commit"}),
            # a later request (a cancel) mentions the same order: not the order's trace
            span(T2, "c1", None, "svc-b", "POST /orders/o-42/cancel", 50_000_000, 51_000_000,
                 **{"url.path": "/orders/o-42/cancel"}),
        ]) + "\n{torn"
    )  # fmt: skip
    (folder / "svc-a-1.jsonl").write_text(
        span(T1, "a1", "b2", "svc-a", "POST /reservations", 2_100_000, 2_900_000) + "\n"
    )


def test_an_order_is_found_by_its_id_and_walked_parent_first(tmp_path):
    write(tmp_path / "traces")
    trace = find_trace(read_spans(tmp_path / "traces"), "o-42")
    assert trace is not None and trace.trace_id == T1
    assert [(depth, s.span_id) for depth, s in trace.walk()] == [
        (0, "g1"), (1, "b1"), (2, "b2"), (3, "a1"), (2, "b3"),
    ]  # fmt: skip
    assert trace.services() == {"gateway", "svc-a", "svc-b"}
    assert trace.parent_of(trace.spans[-1]).span_id in {"b1", "b2", "g1"}


def test_by_trace_id_and_nothing_found(tmp_path):
    write(tmp_path / "traces")
    assert [s.span_id for s in find_trace(read_spans(tmp_path / "traces"), T2).spans] == ["c1"]
    assert find_trace(read_spans(tmp_path / "traces"), "o-unknown") is None
    assert find_trace(read_spans(tmp_path / "traces"), "c" * 32) is None


def test_the_waterfall_places_each_span_on_the_timeline(tmp_path):
    write(tmp_path / "traces")
    lines = waterfall(find_trace(read_spans(tmp_path / "traces"), T1), width=80)
    assert lines[0].startswith(f"trace {T1} — 5 spans, 10.0 ms")
    root, reservation = lines[1], lines[3]
    assert root.startswith("gateway POST /api/svc-b") and root.rstrip().endswith("10.0 ms")
    assert reservation.startswith("    svc-b POST svc-a")
    # the reservation call starts a fifth into the trace: its bar starts later than the root's
    assert reservation.index("█") > root.index("█")
