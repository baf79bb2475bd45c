"""The traces page: recent requests and orders; one trace as a waterfall with span details."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from caravan_workspace.console_web.context import ConsoleDep
from caravan_workspace.console_web.readers.traces import is_trace_id, lookup, recent, waterfall


class TracesController(Controller):
    path = "/traces"

    @get("", sync_to_thread=True)
    def traces(
        self, console: ConsoleDep, find: FromQuery[str | None] = None, orders: FromQuery[bool] = False
    ) -> Template | Redirect:
        spans = console.spans.spans()
        needle = (find or "").strip()
        if needle:
            if len(needle) > 200:
                raise ClientException("search for an order id or a trace id (at most 200 characters)")
            found = lookup(spans, needle)
            if found is None:
                raise NotFoundException(
                    f"no trace mentions {needle!r} (traces are read from the runtime's span files)"
                )
            return Redirect(path=f"/traces/{found.trace_id}")
        context = {"page": "traces", "traces": recent(spans, orders_only=orders), "orders": orders}
        return Template(template_name="traces.html.j2", context=context)

    @get("/{trace_id:str}", sync_to_thread=True)
    def trace(self, console: ConsoleDep, trace_id: FromPath[str]) -> Template:
        if not is_trace_id(trace_id):
            raise ClientException(f"{trace_id[:64]!r} is not a trace id (32 lowercase hexadecimal digits)")
        found = lookup(console.spans.spans(), trace_id)
        if found is None:
            raise NotFoundException(f"no trace {trace_id} in the runtime's span files")
        rows, total_ms = waterfall(found)
        context = {"page": "traces", "trace": found, "rows": rows, "total_ms": total_ms}
        return Template(template_name="trace.html.j2", context=context)
