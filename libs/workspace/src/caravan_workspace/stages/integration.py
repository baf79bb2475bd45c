"""Stage 13: the system as a whole — an order crosses the gateway, orders, catalog and payments.

The "inter-service calls work" gate places a demo order through the gateway as the ``demo``
customer (a product of the demo catalogue, the approving test card), waits until it is confirmed
and finds, in the runtime's span files, the calls it caused: orders → catalog and orders →
payments. It records the order in ``<state>/integration/demo-order.json``; the "tracing works"
gate then checks that order's trace: one trace id across the gateway, orders, catalog and
payments, each hop's server span a child of its caller's span.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from caravan_workspace.registry import Context, GateFailure, gate
from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.state import write_atomic
from caravan_workspace.traces import SpanRecord, Trace, find_trace, read_spans, sampled_traceparent

ORDERS, CATALOG, PAYMENTS = "svc-b", "svc-a", "svc-c"
APPROVING_CARD = "tok_approve"
SPAN_WAIT_S = 15.0  # span files are written in batches (every few seconds)


def _call(
    method: str, url: str, key: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"X-API-Key": key, "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise GateFailure(f"{method} {url}: no answer ({exc})", fix="invoke status") from exc
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def _detail(document: Any) -> str:
    if isinstance(document, dict):
        return str(document.get("detail") or document.get("title") or document)[:200]
    return str(document)[:200]


def place_demo_order(rt: LocalRuntime) -> dict[str, Any]:
    """Place one order through the gateway and wait until it leaves the saga; returns it."""
    return place_order(gateway_runtime.url(rt), gateway_runtime.api_key(rt, "demo"))


def place_order(base: str, key: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Place one order through the gateway at ``base`` as the customer of API key ``key`` (a
    product of the demo catalogue, the approving card; ``idempotency_key``, else a fresh one) and
    wait until it leaves the saga."""
    status, page = _call("GET", f"{base}/api/{CATALOG}/products?active=true&limit=10", key)
    if status != 200 or not isinstance(page, dict) or not page.get("items"):
        raise GateFailure(
            f"no product to order (GET products: {status} {_detail(page)})", fix="invoke stage 6"
        )
    sku = page["items"][0]["sku"]
    body = {"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": APPROVING_CARD}}
    idempotency_key = idempotency_key or f"demo-{uuid.uuid4()}"
    # the gates read this order's trace: ask for it to be recorded whatever the sampling ratio
    headers = {"Idempotency-Key": f'"{idempotency_key}"', "traceparent": sampled_traceparent()}
    status, order = _call("POST", f"{base}/api/{ORDERS}/orders", key, body, headers)
    if status not in (200, 201, 202) or not isinstance(order, dict) or "id" not in order:
        raise GateFailure(
            f"placing an order through the gateway: {status} {_detail(order)}", fix="invoke logs svc-b-1"
        )
    deadline = time.monotonic() + 30
    while order.get("status") not in ("confirmed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        status, order = _call("GET", f"{base}/api/{ORDERS}/orders/{order['id']}", key)
        if status != 200 or not isinstance(order, dict):
            raise GateFailure(f"reading the order back: {status} {_detail(order)}")
    return order


def _record(rt: LocalRuntime) -> Any:
    return rt.ctx.state_dir / "integration" / "demo-order.json"


def demo_order_trace(rt: LocalRuntime, order_id: str, *, wait: float = SPAN_WAIT_S) -> Trace:
    """The trace of the request that placed ``order_id``, once every service's spans are written."""
    deadline = time.monotonic() + wait
    while True:
        found = find_trace(read_spans(rt.ctx.state_dir / "traces"), order_id)
        if found is not None and {"gateway", ORDERS, CATALOG, PAYMENTS} <= found.services():
            return found
        if time.monotonic() > deadline:
            if found is None:
                raise GateFailure(
                    f"no span mentions order {order_id}", fix="is tracing on? invoke logs svc-b-1"
                )
            return found
        time.sleep(0.5)


def _calls(trace: Trace, target: str) -> list[SpanRecord]:
    """svc-b's CLIENT spans calling ``target`` in the trace."""
    return [
        s
        for s in trace.spans
        if s.service == ORDERS and s.kind == "CLIENT" and s.attributes.get("peer.service") == target
    ]


@gate("integration.calls")
def inter_service_calls(ctx: Context) -> str:
    rt = LocalRuntime(ctx)
    order = place_demo_order(rt)
    path = _record(rt)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"id": order["id"], "status": order.get("status")}).encode())
    if order.get("status") != "confirmed":
        reason = order.get("cancel_reason") or order.get("reason") or "–"
        raise GateFailure(f"demo order {order['id']} ended {order.get('status')} (reason {reason})")
    trace = demo_order_trace(rt, order["id"])
    observed = {target: _calls(trace, target) for target in (CATALOG, PAYMENTS)}
    missing = [target for target, spans in observed.items() if not spans]
    if missing:
        raise GateFailure(
            f"order {order['id']} confirmed, but no call orders → {', '.join(missing)} was traced"
        )
    paths = {
        t: sorted({str(s.attributes.get("url.path", s.name)) for s in spans}) for t, spans in observed.items()
    }
    return (
        f"order {order['id']} confirmed; orders → catalog {len(observed[CATALOG])} calls "
        f"({', '.join(paths[CATALOG])}), orders → payments {len(observed[PAYMENTS])} calls"
    )


@gate("integration.tracing")
def one_trace(ctx: Context) -> str:
    rt = LocalRuntime(ctx)
    try:
        order_id = json.loads(_record(rt).read_text())["id"]
    except (OSError, ValueError, KeyError) as exc:
        raise GateFailure(
            "no demo order recorded", fix="the 'inter-service calls work' gate places it"
        ) from exc
    trace = demo_order_trace(rt, order_id)
    absent = {"gateway", ORDERS, CATALOG, PAYMENTS} - trace.services()
    if absent:
        raise GateFailure(f"the trace of order {order_id} misses {', '.join(sorted(absent))}")
    if len(trace.roots) != 1 or trace.roots[0].service != "gateway":
        roots = ", ".join(f"{s.service} {s.name}" for s in trace.roots)
        raise GateFailure(
            f"the trace of order {order_id} should have one root, the gateway's; it has {roots}"
        )
    broken = []
    for span in trace.spans:
        if span.kind != "SERVER" or span.service == "gateway":
            continue
        parent = trace.parent_of(span)
        expected = ("gateway",) if span.service == ORDERS else (ORDERS,)
        if parent is None or parent.service not in expected:
            broken.append(f"{span.service} {span.name} ← {parent.service if parent else 'nothing'}")
    if broken:
        raise GateFailure("wrong parent links: " + "; ".join(broken[:3]))
    duration = (max(s.end_ns for s in trace.spans) - min(s.start_ns for s in trace.spans)) / 1e6
    return (
        f"trace {trace.trace_id}: {len(trace.spans)} spans across gateway, orders, catalog and payments, "
        f"{duration:.1f} ms (invoke trace {order_id})"
    )
