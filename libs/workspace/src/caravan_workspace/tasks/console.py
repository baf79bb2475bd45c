"""`invoke console`: the web console on loopback, with its login link."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context, task
from invoke.exceptions import Exit

from caravan_workspace.tasks.common import BAD_INPUT, Workspace, workspace

if TYPE_CHECKING:
    from caravan_workspace.console_web.settings import ConsoleSettings


def console_settings(ws: Workspace, port: int = 0) -> ConsoleSettings:
    """The console's settings for this workspace: its token (made once, 0600) and its port
    (allocated once from the operations tier, unless ``port`` is given)."""
    from caravan_workspace.console_web.settings import ConsoleSettings, console_port, ensure_token
    from caravan_workspace.foundation import load_foundation
    from caravan_workspace.runtime.ports import PortBook
    from caravan_workspace.services import load_services

    if not port:
        port = console_port(PortBook(ws.state_dir, load_foundation(ws.root, load_services(ws.root))))
    return ConsoleSettings(root=ws.root, state_dir=ws.state_dir, token=ensure_token(ws.state_dir), port=port)


def console_url(ws: Workspace) -> str:
    """Where `invoke console` serves (for `invoke up` to list)."""
    return console_settings(ws).url


@task(help={"port": "listen on this loopback port instead of the one allocated to the console"})
def console(c: Context, port: int = 0) -> None:
    """Serve the web console on loopback (plan, programs, logs, traces, metrics, alerts,
    deployments); open the printed link, which carries the login token. Ctrl-C stops it."""
    from caravan_workspace.console_web.server import serve

    if port and not 1024 <= port <= 65535:
        raise Exit(f"error: port {port} is not a port from 1024 to 65535", code=BAD_INPUT)
    settings = console_settings(workspace(), port)
    print(f"Caravan console on {settings.url}/ (loopback only)")
    print(f"open: {settings.login_url}")
    print(f"token file: {settings.state_dir.name}/console/token (0600)", flush=True)
    try:
        serve(settings)
    except OSError as exc:
        raise Exit(f"error: cannot serve on {settings.url}: {exc}", code=1) from exc
