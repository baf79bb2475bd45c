"""`invoke deploy --target T`: one module per target (docker, nomad, k8s), each with a ``deploy``
function; :mod:`caravan_workspace.tasks.deployment` dispatches to them. The docker target also
answers ``status(ctx)``, ``down(ctx, purge=False)`` and ``logs(ctx, name)`` (see :data:`TARGETS`),
which `invoke status|down|logs --target docker` use."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from types import ModuleType

from caravan_workspace import render
from caravan_workspace.render.model import Deployment, Environment, load_deployment, load_environment

#: targets whose programs `invoke status|down|logs --target T` can observe from here
TARGETS: dict[str, str] = {"docker": "caravan_workspace.deploy.docker"}


class DeployError(Exception):
    """A deploy stopped; the message is one line naming what failed, ``fix`` says what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def target_module(target: str) -> ModuleType:
    if target not in TARGETS:
        known = ", ".join(["local", *sorted(TARGETS)])
        raise DeployError(f"unknown target {target!r} (known: {known})")
    return importlib.import_module(TARGETS[target])


def git_revision(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def prepare(root: Path, env_name: str, folder: Path) -> tuple[Deployment, Environment]:
    """What a target deploys, once the committed files under ``folder`` equal a fresh render (a
    deploy never ships files the user has not seen)."""
    stale = [p for p in render.drift(root) if p.startswith(str(folder))]
    if stale:
        raise DeployError(
            f"the rendered files are stale ({stale[0]}): run `invoke render` and review the diff"
        )
    return load_deployment(root), load_environment(root, env_name)
