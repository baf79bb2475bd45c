"""Where the workspace is: its root (the folder holding plan.toml) and its state folder."""

from __future__ import annotations

import os
from pathlib import Path

PLAN_FILE = "plan.toml"


class WorkspaceNotFound(Exception):
    pass


def find_root(start: Path | None = None) -> Path:
    """CARAVAN_ROOT if set, else the nearest folder upwards holding plan.toml."""
    env = os.environ.get("CARAVAN_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / PLAN_FILE).is_file():
            raise WorkspaceNotFound(f"CARAVAN_ROOT={env} holds no {PLAN_FILE}")
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PLAN_FILE).is_file():
            return folder
    raise WorkspaceNotFound(f"no {PLAN_FILE} in {here} or above: run this inside a Caravan workspace")


def state_dir(root: Path) -> Path:
    """CARAVAN_STATE_DIR if set, else <root>/.caravan (git-ignored)."""
    env = os.environ.get("CARAVAN_STATE_DIR")
    return Path(env).resolve() if env else root / ".caravan"
