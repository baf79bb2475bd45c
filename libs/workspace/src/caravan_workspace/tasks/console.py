"""`invoke console`: the web console on loopback, with its login link."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context, task
from invoke.exceptions import Exit

from caravan_workspace.tasks.common import BAD_INPUT, FAILED, Workspace, workspace

if TYPE_CHECKING:
    from caravan_workspace.console_web.settings import ConsoleSettings


def _port(ws: Workspace) -> int:
    """The console's port: allocated once from the operations tier and kept."""
    from caravan_workspace.console_web.settings import console_port
    from caravan_workspace.foundation import load_foundation
    from caravan_workspace.runtime.ports import PortBook
    from caravan_workspace.services import load_services

    return console_port(PortBook(ws.ctx.state_dir, load_foundation(ws.ctx.root, load_services(ws.ctx.root))))


def console_settings(ws: Workspace, port: int = 0) -> ConsoleSettings:
    """The console's settings for this workspace: its token (made once, 0600) and its port."""
    from caravan_workspace.console_web.settings import ConsoleSettings, ensure_token

    return ConsoleSettings(
        root=ws.ctx.root,
        state_dir=ws.ctx.state_dir,
        token=ensure_token(ws.ctx.state_dir),
        port=port or _port(ws),
    )


def console_url(ws: Workspace) -> str | None:
    """Where `invoke console` serves (for `invoke up` to list); None when no port can be had."""
    from caravan_workspace.console_web.settings import LOOPBACK
    from caravan_workspace.foundation import FoundationError
    from caravan_workspace.runtime.ports import PortCollision
    from caravan_workspace.services import DeclarationError

    try:
        return f"http://{LOOPBACK}:{_port(ws)}"
    except (FoundationError, DeclarationError, PortCollision, OSError):
        return None  # `invoke console` itself says what is wrong


@task(help={"port": "listen on this loopback port instead of the one allocated to the console"})
def console(c: Context, port: int = 0) -> None:
    """Serve the web console on loopback (plan, programs, logs, traces, metrics, alerts,
    deployments); open the printed link, which carries the login token. Ctrl-C stops it."""
    from caravan_workspace.console_web.server import serve

    if port and not 1024 <= port <= 65535:
        raise Exit(f"error: port {port} is not a port from 1024 to 65535", code=BAD_INPUT)
    from caravan_workspace.foundation import FoundationError
    from caravan_workspace.runtime.ports import PortCollision, holder_of, port_is_free
    from caravan_workspace.services import DeclarationError

    try:
        settings = console_settings(workspace(), port)
    except (FoundationError, DeclarationError, PortCollision) as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    if not port_is_free(settings.port, settings.host):
        raise Exit(
            f"error: port {settings.port} is taken by {holder_of(settings.port)}: use --port", code=FAILED
        )
    print(f"Caravan console on {settings.url}/ (loopback only)")
    print(f"open: {settings.login_url}")
    print(f"token file: {settings.state_dir.name}/console/token (0600)", flush=True)
    serve(settings)
