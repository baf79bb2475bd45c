"""Workspace basics for stage 1: the state folder and the toolchain report."""

from __future__ import annotations

from caravan_workspace.registry import ActionResult, Context, GateFailure, action, gate
from caravan_workspace.toolchain import missing_packages, survey


@action("workspace.state")
def ensure_state_folder(ctx: Context) -> ActionResult:
    if ctx.state_dir.is_dir():
        return ActionResult(changed=False, detail="state folder present")
    ctx.state_dir.mkdir(parents=True, mode=0o700)
    return ActionResult(changed=True, detail="state folder created")


@gate("workspace.toolchain")
def toolchain_present(ctx: Context) -> str:
    """Every required tool and every system package a stage needs is present."""
    statuses = survey(versions=False)
    missing_required = [s.tool for s in statuses if s.tool.required and not s.path]
    if missing_required:
        tool = missing_required[0]
        raise GateFailure(f"required tool {tool.name} is missing ({tool.purpose})", fix=tool.install)
    packages = missing_packages(statuses)
    if packages:
        needed = [s.tool for s in statuses if s.tool.stages and not s.path]
        raise GateFailure(
            "missing: " + ", ".join(f"{t.name} ({t.purpose})" for t in needed),
            fix="invoke toolchain --install",
        )
    missing_optional = [s.tool.name for s in statuses if not s.tool.required and not s.path]
    required = ", ".join(f"{s.tool.name} ✓" for s in statuses if s.tool.required or s.tool.stages)
    optional = (
        f"; optional missing: {', '.join(missing_optional)} (invoke toolchain)" if missing_optional else ""
    )
    return required + optional
