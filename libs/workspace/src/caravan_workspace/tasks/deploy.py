"""The docker target's side of the command line: `invoke deploy --target docker` (dispatched here by
:mod:`caravan_workspace.tasks.deployment`) and `invoke status|down|logs --target docker`."""

from __future__ import annotations

from invoke.exceptions import Exit
from rich.table import Table

from caravan_workspace.deploy import DeployError, target_module
from caravan_workspace.images.docker import DockerError
from caravan_workspace.tasks.common import FAILED, console, workspace_context


def fail(exc: DeployError | DockerError) -> Exit:
    return Exit(f"error: {exc}" + (f" — fix: {exc.fix}" if exc.fix else ""), code=FAILED)


def target_deploy(target: str) -> None:
    """Deploy the whole system to a target that runs here (docker: the images, the foundation's
    networks, the containers in dependency order, each healthy before its dependents)."""
    try:
        module = target_module(target)
        done = module.deploy(workspace_context())
    except (DeployError, DockerError) as exc:
        raise fail(exc) from exc
    changed = ", ".join(done.changed) or "nothing changed"
    print(f"{done.project} is up on {target}: gateway {done.url} ({changed})")


def target_status(target: str) -> None:
    try:
        rows = target_module(target).status(workspace_context())
    except (DeployError, DockerError) as exc:
        raise fail(exc) from exc
    if not rows:
        print(f"nothing runs on {target} (`invoke deploy --target {target}` starts it)")
        return
    table = Table(title=f"Containers ({target})")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    console().print(table)


def target_down(target: str, purge: bool) -> None:
    try:
        print(target_module(target).down(workspace_context(), purge=purge))
    except (DeployError, DockerError) as exc:
        raise fail(exc) from exc


def target_logs(target: str, name: str) -> None:
    try:
        print(target_module(target).logs(workspace_context(), name), end="")
    except (DeployError, DockerError) as exc:
        raise fail(exc) from exc
