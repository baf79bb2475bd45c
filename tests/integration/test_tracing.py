"""One order, one trace: the topology read from the runtime's span files (no tracing backend is
polled), and the log lines of every hop carrying that trace id."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from system import System

from caravan_workspace.traces import Trace, find_trace, read_spans

HOPS = {"gateway", "svc-b", "svc-a", "svc-c"}


#: The server routes one confirmed order's trace holds (reserve, commit; authorise, capture).
ORDER_ROUTES = {
    ("svc-a", "/reservations"),
    ("svc-a", "/reservations/{order_id}/commit"),
    ("svc-c", "/payments/authorize"),
    ("svc-c", "/payments/{payment_id}/capture"),
}


def served_routes(trace: Trace) -> set[tuple[str, str | None]]:
    return {(s.service, s.attributes.get("http.route")) for s in trace.spans if s.kind == "SERVER"}


def every_hop(trace: Trace) -> bool:
    return trace.services() >= HOPS


def whole_order(trace: Trace) -> bool:
    """Every span the assertions below look at is written: every hop, the order's routes served,
    and one root — the gateway's — so no span waits for its parent (a span whose parent is not
    written yet shows as a root of its own)."""
    roots = trace.roots
    return (
        every_hop(trace)
        and served_routes(trace) >= ORDER_ROUTES
        and len(roots) == 1
        and roots[0].service == "gateway"
    )


def trace_of(
    system: System, order_id: str, complete: Callable[[Trace], bool] = every_hop, within: float = 20.0
) -> Trace:
    """The order's trace once ``complete`` holds for it — span files are written in batches, by
    each program on its own schedule, so a test waits for the very spans it asserts."""
    deadline = time.monotonic() + within
    while True:
        found = find_trace(read_spans(system.state_dir / "traces"), order_id)
        if (found is not None and complete(found)) or time.monotonic() > deadline:
            assert found is not None, f"no span mentions {order_id}"
            return found
        time.sleep(0.5)


def test_an_orders_trace_spans_every_hop_with_correct_parents(system: System) -> None:
    sku = system.new_product(stock=3)
    order = system.settled(system.place_order([(sku, 1)]).json()["id"])
    assert order["status"] == "confirmed"
    trace = trace_of(system, order["id"], whole_order)
    assert trace.services() >= HOPS
    (root,) = trace.roots
    assert (root.service, root.kind, root.attributes.get("url.path")) == (
        "gateway",
        "SERVER",
        "/api/svc-b/orders",
    )
    (orders,) = [s for s in trace.spans if s.service == "svc-b" and s.kind == "SERVER"]
    assert trace.parent_of(orders) == root
    calls = [s for s in trace.spans if s.service == "svc-b" and s.kind == "CLIENT"]
    for span in trace.spans:
        if span.kind == "SERVER" and span.service in ("svc-a", "svc-c"):
            parent = trace.parent_of(span)
            assert parent in calls and parent.attributes["peer.service"] == span.service
    assert {c.attributes["peer.service"] for c in calls} == {"svc-a", "svc-c"}
    for call in calls:  # every call hangs off svc-b's handling of the order request
        assert trace.parent_of(call) == orders
    served = {
        (s.service, s.name.split(" ", 1)[0], s.attributes.get("http.route"))
        for s in trace.spans
        if s.kind == "SERVER"
    }
    catalog_routes = {r for svc, _, r in served if svc == "svc-a"}
    payment_routes = {r for svc, _, r in served if svc == "svc-c"}
    assert {"/reservations", "/reservations/{order_id}/commit"} <= catalog_routes, catalog_routes
    assert {"/payments/authorize", "/payments/{payment_id}/capture"} <= payment_routes, payment_routes


def test_every_hop_logs_the_order_with_its_trace_id(system: System) -> None:
    sku = system.new_product(stock=3)
    order = system.settled(system.place_order([(sku, 1)]).json()["id"])
    trace = trace_of(system, order["id"])
    programs = ("gateway-1", "svc-b-1", "svc-a-1", "svc-c-1")
    hops: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 20.0  # log lines are written in batches: wait for the very lines
    while set(hops) != set(programs) and time.monotonic() < deadline:
        for program in programs:
            for line in system.runtime.supervisor.log_path(program).read_text().splitlines():
                if line.startswith("{") and f'"{trace.trace_id}"' in line:
                    hops.setdefault(program, json.loads(line))
        if set(hops) != set(programs):
            time.sleep(0.5)
    assert set(hops) == set(programs), hops
