"""What every task needs: the workspace (root, state folder, plan) and a console."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from invoke.exceptions import Exit
from rich.console import Console

from caravan_workspace import paths, registry, stages
from caravan_workspace.plan import Plan, PlanError, load_plan
from caravan_workspace.state import StateError, StateStore

BAD_INPUT = 2
FAILED = 1


@dataclass(frozen=True)
class Workspace:
    """The workspace context with the plan and the state it holds."""

    ctx: registry.Context
    plan: Plan
    store: StateStore

    def context(self, progress: registry.Progress) -> registry.Context:
        return replace(self.ctx, progress=progress)


def console() -> Console:
    terminal = sys.stdout.isatty()
    width = None if terminal else int(os.environ.get("COLUMNS", "160"))
    return Console(highlight=False, width=width, soft_wrap=not terminal)


def _root(code: int) -> Path:
    try:
        return paths.find_root()
    except paths.WorkspaceNotFound as exc:
        raise Exit(f"error: {exc}", code=code) from exc


def workspace_context(progress: registry.Progress = lambda m: print(f"  {m}")) -> registry.Context:
    """The workspace context, progress printed as it happens (exit 1 outside a workspace)."""
    return registry.Context.at(_root(FAILED), progress)


def workspace() -> Workspace:
    """Load the plan and the state, turning every problem into a one-line error (exit 2)."""
    ctx = registry.Context.at(_root(BAD_INPUT))
    try:
        plan = load_plan(ctx.root / paths.PLAN_FILE)
    except PlanError as exc:
        raise Exit(f"error: invalid plan: {exc}", code=BAD_INPUT) from exc
    try:
        store = StateStore(ctx.state_dir)
    except StateError as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    stages.load_all()
    return Workspace(ctx=ctx, plan=plan, store=store)
