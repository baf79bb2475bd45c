"""`invoke test`: the whole test suite, as CI runs it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from invoke import Context, task

from caravan_workspace import paths


@task(
    help={
        "session": "run only these nox sessions (repeatable)",
        "args": "extra arguments after -- for pytest",
    },
    iterable=["session"],
)
def test(c: Context, session: list[str] | None = None, args: str = "") -> None:
    """Run the whole test suite: every default nox session (each package, integration, lint, typecheck)."""
    nox = Path(sys.executable).with_name("nox")
    command = [str(nox) if nox.exists() else "nox", "--no-color"]
    for name in session or []:
        command += ["-s", name]
    if args:
        command += ["--", *shlex.split(args)]
    with c.cd(str(paths.find_root())):
        c.run(shlex.join(command), pty=False)
