"""Stage 1 probes available before the foundation model lands: the layout and the toolchain."""

from __future__ import annotations

from caravan_workspace.registry import ActionResult, Context, GateFailure, action, gate
from caravan_workspace.services import DeclarationError, load_services
from caravan_workspace.toolchain import survey

LAYOUT = (
    "tasks.py",
    "noxfile.py",
    "plan.toml",
    "README.md",
    ".ci/run",
    "foundation",
    "shared",
    "libs/commons/pyproject.toml",
    "libs/workspace/pyproject.toml",
    "svc-a/pyproject.toml",
    "svc-b/pyproject.toml",
    "svc-c/pyproject.toml",
    "nomad",
    "k8s",
    "observability",
    "tests",
)


@action("workspace.state")
def ensure_state_folder(ctx: Context) -> ActionResult:
    if ctx.state_dir.is_dir():
        return ActionResult(changed=False, detail="state folder present")
    ctx.state_dir.mkdir(parents=True, mode=0o700)
    return ActionResult(changed=True, detail="state folder created")


@gate("workspace.layout")
def layout_present(ctx: Context) -> str:
    missing = [p for p in LAYOUT if not (ctx.root / p).exists()]
    if missing:
        raise GateFailure(
            f"missing from the workspace: {', '.join(missing)}", fix="git checkout -- . (restore the layout)"
        )
    try:
        services = load_services(ctx.root)
    except DeclarationError as exc:
        raise GateFailure(str(exc), fix="correct the service declaration") from exc
    return f"{len(LAYOUT)} paths present; services declared: {', '.join(services)}"


@gate("workspace.toolchain")
def toolchain_present(ctx: Context) -> str:
    statuses = survey()
    missing_required = [s.tool for s in statuses if s.tool.required and not s.path]
    if missing_required:
        tool = missing_required[0]
        raise GateFailure(f"required tool {tool.name} is missing ({tool.purpose})", fix=tool.install)
    missing_optional = [s.tool.name for s in statuses if not s.tool.required and not s.path]
    required = ", ".join(f"{s.tool.name} ✓" for s in statuses if s.tool.required)
    optional = (
        f"; optional missing: {', '.join(missing_optional)} (invoke toolchain)" if missing_optional else ""
    )
    return required + optional
