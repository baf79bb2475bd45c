"""The logs page: a program's log, filtered by level, text and trace id, with a live tail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Controller, Request, get
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template

from caravan_workspace.console_web.context import ConsoleDep
from caravan_workspace.console_web.readers.logs import (
    LEVELS,
    LogFilter,
    LogLine,
    LogQueryError,
    log_path,
    log_programs,
    read_from,
    read_tail,
)


def _filter(level: str | None, q: str | None, trace: str | None) -> LogFilter:
    try:
        return LogFilter.parse(level, q, trace)
    except LogQueryError as exc:
        raise ClientException(str(exc)) from exc


def _log_of(
    state_dir: Path, name: str, level: str | None, q: str | None, trace: str | None
) -> tuple[Path, LogFilter]:
    """The program's log file and the filter asked for (404 / 400 when either is wrong)."""
    path = log_path(state_dir, name)
    if path is None:
        raise NotFoundException(f"no log for program {name!r} (the logs page lists the programs)")
    return path, _filter(level, q, trace)


class LogsController(Controller):
    path = "/logs"

    @get("", sync_to_thread=True)
    def logs(self, console: ConsoleDep, trace: FromQuery[str | None] = None) -> Template | Redirect:
        programs = log_programs(console.state_dir)
        if trace is not None:  # every program's lines of one trace
            wanted = _filter(None, None, trace)
            found: list[tuple[str, LogLine]] = []
            for program in programs:
                path = log_path(console.state_dir, program)
                if path is not None:
                    found.extend((program, line) for line in read_tail(path, wanted)[0])
            found.sort(key=lambda pair: pair[1].time)
            return Template(
                template_name="logs_trace.html.j2",
                context={"page": "logs", "programs": programs, "trace": wanted.trace_id, "found": found},
            )
        if not programs:
            return Template(
                template_name="logs.html.j2", context={"page": "logs", "programs": [], "program": None}
            )
        first = next((p for p in programs if p.startswith("svc-")), programs[0])
        return Redirect(path=f"/logs/{first}")

    @get("/{name:str}", sync_to_thread=True)
    def program_log(
        self,
        console: ConsoleDep,
        name: FromPath[str],
        level: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        trace: FromQuery[str | None] = None,
    ) -> Template:
        path, wanted = _log_of(console.state_dir, name, level, q, trace)
        lines, offset = read_tail(path, wanted)
        context = {
            "page": "logs", "programs": log_programs(console.state_dir), "program": name, "lines": lines,
            "offset": offset, "filter": wanted, "levels": LEVELS,
        }  # fmt: skip
        return Template(template_name="logs.html.j2", context=context)

    @get("/{name:str}/tail", sync_to_thread=False)
    def tail(
        self,
        request: Request,
        console: ConsoleDep,
        name: FromPath[str],
        offset: FromQuery[int] = 0,
        level: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        trace: FromQuery[str | None] = None,
    ) -> ServerSentEvent:
        path, wanted = _log_of(console.state_dir, name, level, q, trace)
        engine = request.app.template_engine
        assert engine is not None
        template = engine.get_template("log_line.html.j2")

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            position = max(offset, 0)
            while True:
                lines, position = await asyncio.to_thread(read_from, path, position, wanted)
                for line in lines:
                    yield ServerSentEventMessage(
                        event="line", data=template.render(line=line).replace("\n", " ")
                    )
                await asyncio.sleep(0.5)

        return ServerSentEvent(stream())
