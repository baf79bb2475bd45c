"""`invoke test`: the whole test suite, as CI runs it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from invoke import Context, task
from invoke.exceptions import Exit

from caravan_workspace import paths, registry
from caravan_workspace.runtime.supervisor import Supervisor
from caravan_workspace.stages import commons as commons_stage


@task(
    help={
        "session": "run only these nox sessions (repeatable)",
        "args": "extra arguments after -- for pytest",
    },
    iterable=["session"],
)
def test(c: Context, session: list[str] | None = None, args: str = "") -> None:
    """Run the whole test suite: every default nox session (each package, integration, lint, typecheck).

    First it makes sure the workspace package index runs and serves the current caravan-commons,
    since services and the gateway install commons from there; what it started, it stops."""
    nox = Path(sys.executable).with_name("nox")
    command = [str(nox) if nox.exists() else "nox", "--no-color"]
    for name in session or []:
        command += ["-s", name]
    if args:
        command += ["--", *shlex.split(args)]
    ctx = registry.Context.at(paths.find_root(), progress=lambda message: print(f"test: {message}"))
    root = ctx.root
    supervisor = Supervisor(ctx.state_dir)
    started_here = not supervisor.is_running()
    try:
        # Deployables install caravan-commons from the workspace index: have it up and current.
        for prepare in (commons_stage.ensure_index, commons_stage.publish_commons):
            print(f"test: {prepare(ctx).detail}")
        with c.cd(str(root)):
            c.run(shlex.join(command), pty=False)
    except (registry.ActionError, registry.GateFailure) as exc:
        raise Exit(f"error: cannot prepare the workspace index: {exc}", code=1) from exc
    finally:
        if started_here:
            supervisor.shutdown()
