"""The programs page: every program of the local runtime, start / stop / restart, and each
service's instances against its scaling bounds."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from caravan_workspace.console_web.context import Console, ConsoleDep, is_fragment
from caravan_workspace.console_web.readers.programs import ACTIONS, known_program, programs_view
from caravan_workspace.runtime.supervisor import Supervisor, SupervisorError


class ProgramsController(Controller):
    path = "/programs"

    def _render(self, console: Console, request: Request, notice: str = "") -> Template:
        view = programs_view(console.state_dir, console.services)
        name = "programs_table.html.j2" if is_fragment(request) else "programs.html.j2"
        return Template(template_name=name, context={"page": "programs", "view": view, "notice": notice})

    @get("", sync_to_thread=True)
    def programs(self, console: ConsoleDep, request: Request) -> Template:
        return self._render(console, request)

    @post("/{name:str}/{action:str}", sync_to_thread=True, status_code=200)
    def act(
        self, console: ConsoleDep, request: Request, name: FromPath[str], action: FromPath[str]
    ) -> Template | Redirect:
        if action not in ACTIONS:
            raise ClientException(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
        supervisor = Supervisor(console.state_dir)
        if not supervisor.is_running():
            raise HTTPException("the supervisor is not running: `invoke up` starts it", status_code=409)
        if not known_program(console.state_dir, name):
            raise NotFoundException(f"no program {name!r} (the programs page lists them)")
        try:
            if action == "start":
                supervisor.start(name)
            elif action == "stop":
                supervisor.stop(name)
            else:
                supervisor.restart(name)
        except SupervisorError as exc:
            raise HTTPException(f"{action} {name}: {exc}", status_code=409) from exc
        if not is_fragment(request):
            return Redirect(path="/programs", status_code=303)
        return self._render(console, request, notice=f"{action}: {name} done")
