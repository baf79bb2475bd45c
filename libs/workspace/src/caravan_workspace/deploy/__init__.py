"""`invoke deploy --target T`: one module per target (nomad, k8s, docker), each with a ``deploy``
function; :mod:`caravan_workspace.tasks.deployment` dispatches to them."""

from __future__ import annotations

import subprocess
from pathlib import Path


class DeployError(Exception):
    """A deploy stopped; the message is one line naming what failed."""


def git_revision(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"
