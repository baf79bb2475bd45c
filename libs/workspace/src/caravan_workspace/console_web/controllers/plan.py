"""The plan page: the graph coloured by status, each stage's gates, and stage runs streamed live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html import escape
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from caravan_workspace.console import STATUS_STYLE
from caravan_workspace.console_web.context import Console, ConsoleDep, is_fragment
from caravan_workspace.console_web.readers.plan import plan_view
from caravan_workspace.console_web.runs import MODES, RunRefused, follow


class PlanController(Controller):
    path = "/plan"

    def _page(self, console: Console, request: Request, selected: int | None) -> Template:
        view = plan_view(console.plan, console.state_dir, console.graphs, console.running_stages())
        row = next((r for r in view.rows if r.stage.number == selected), None)
        context = {
            "page": "plan", "view": view, "selected": row, "styles": STATUS_STYLE, "modes": list(MODES),
            "lanes": console.plan.lanes, "run": console.runs.active(),
        }  # fmt: skip
        if selected is not None and is_fragment(request):
            return Template(template_name="stage.html.j2", context=context)
        return Template(template_name="plan.html.j2", context=context)

    @get("", sync_to_thread=True)
    def plan(self, console: ConsoleDep, request: Request) -> Template:
        return self._page(console, request, None)

    @get("/stages/{number:int}", sync_to_thread=True)
    def stage(self, console: ConsoleDep, request: Request, number: FromPath[int]) -> Template:
        if number not in console.plan.stages:
            raise NotFoundException(
                f"there is no stage {number}: the plan has stages 1–{max(console.plan.stages)}"
            )
        return self._page(console, request, number)

    @post("/stages/{number:int}/run", sync_to_thread=False, status_code=202)
    def run(
        self,
        console: ConsoleDep,
        number: FromPath[int],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        if number not in console.plan.stages:
            raise NotFoundException(f"there is no stage {number}")
        try:
            run = console.runs.start(number, data.get("mode", "deps"))
        except RunRefused as exc:
            status = 400 if "unknown mode" in str(exc) else 409
            raise (
                ClientException(str(exc)) if status == 400 else HTTPException(str(exc), status_code=409)
            ) from exc
        return Template(template_name="run.html.j2", context={"run": run})

    @get("/runs/{run_id:str}/events", sync_to_thread=False)
    def events(self, console: ConsoleDep, run_id: FromPath[str]) -> ServerSentEvent:
        run = console.runs.get(run_id)
        if run is None:
            raise NotFoundException(f"no run {run_id!r} (the console keeps its last runs only)")

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            async for event, data in follow(run):
                if event == "line":
                    yield ServerSentEventMessage(event="line", data=f"<div>{escape(data)}</div>")
                else:
                    cls = "ok" if data == "passed" else "bad"
                    link = f'<a href="/plan/stages/{run.stage}">see stage {run.stage}</a>'
                    # the gates table in the page is refreshed from the state the run recorded
                    link += (
                        f'<span hx-get="/plan/stages/{run.stage}" hx-trigger="load" hx-target="#stage-gates"'
                        ' hx-select="#stage-gates" hx-swap="outerHTML"></span>'
                    )
                    yield ServerSentEventMessage(
                        event="done", data=f'<p class="{cls}">{escape(run.title)}: {data} — {link}</p>'
                    )
            yield ServerSentEventMessage(event="close", data="")

        return ServerSentEvent(stream())
