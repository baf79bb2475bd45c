"""`invoke deploy --target T`: one module per target (nomad, k8s, docker), each with a ``deploy``
function; :mod:`caravan_workspace.tasks.deployment` dispatches to them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from caravan_workspace import render
from caravan_workspace.render.model import Deployment, Environment, load_deployment, load_environment


class DeployError(Exception):
    """A deploy stopped; the message is one line naming what failed."""


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
