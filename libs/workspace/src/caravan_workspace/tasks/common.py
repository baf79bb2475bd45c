"""What every task needs: the workspace (root, state folder, plan) and a console."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from invoke.exceptions import Exit
from rich.console import Console

from caravan_workspace import paths, registry
from caravan_workspace.plan import Plan, PlanError, load_plan
from caravan_workspace.state import StateError, StateStore

BAD_INPUT = 2
FAILED = 1


@dataclass(frozen=True)
class Workspace:
    root: Path
    state_dir: Path
    plan: Plan
    store: StateStore


def console() -> Console:
    terminal = sys.stdout.isatty()
    width = None if terminal else int(os.environ.get("COLUMNS", "160"))
    return Console(highlight=False, width=width, soft_wrap=not terminal)


def workspace() -> Workspace:
    """Load the plan and the state, turning every problem into a one-line error (exit 2)."""
    try:
        root = paths.find_root()
    except paths.WorkspaceNotFound as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    try:
        plan = load_plan(root / paths.PLAN_FILE)
    except PlanError as exc:
        raise Exit(f"error: invalid plan: {exc}", code=BAD_INPUT) from exc
    state_dir = paths.state_dir(root)
    try:
        store = StateStore(state_dir)
    except StateError as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    registry.load_all()
    return Workspace(root=root, state_dir=state_dir, plan=plan, store=store)
