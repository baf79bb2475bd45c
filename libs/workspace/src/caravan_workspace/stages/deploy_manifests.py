"""Stage 14's gates "K8s manifests valid incl. autoscaling" and "Nomad jobs valid incl. scaling":
each renders afresh from the source and runs the checks of :mod:`caravan_workspace.render.checks`
(the committed files must equal the fresh render, so the gate also catches a forgotten
`invoke render`). No Nomad, Consul or Kubernetes API server runs here; `invoke deploy` is the step
that talks to them.

Both gates depend on files only (the declarations, the foundation, the environment files, the
committed renders and the renderer itself) and on the tools they run, so their passes are cached
by those inputs (:mod:`caravan_workspace.gate_cache`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from caravan_workspace.foundation import FoundationError
from caravan_workspace.gate_cache import Inputs
from caravan_workspace.registry import Context, GateFailure, gate
from caravan_workspace.render import checks
from caravan_workspace.render.model import RenderError
from caravan_workspace.services import DeclarationError


def _kubectl_version() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "absent"
    done = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or f"exit {done.returncode}"


def _tool_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def manifest_inputs(ctx: Context) -> Inputs:
    """What both stage 14 manifest gates read: the sources of the render, the committed files, the
    renderer and the validators' versions."""
    root = ctx.root
    renderer = Path(checks.__file__).parent
    return Inputs(
        files=[
            *sorted(root.glob("*/service.toml")),
            root / "foundation" / "foundation.toml",
            root / "deploy" / "environments",
            root / "nomad",
            root / "k8s",
            renderer,
        ],
        values={
            "kubectl": _kubectl_version(),
            "python-hcl2": _tool_version("python-hcl2"),
            "kubernetes-validate": _tool_version("kubernetes-validate"),
        },
    )


def _run(check: Callable[[], tuple[list[str], str]], what: str) -> str:
    """Run a check on a fresh render; its first problem (and how many more) fails the gate."""
    try:
        problems, detail = check()
    except (RenderError, DeclarationError, FoundationError) as exc:
        raise GateFailure(f"cannot render: {exc}") from exc
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        stale = any("fresh render" in p or "missing" in p for p in problems)
        raise GateFailure(
            f"{what}: {problems[0]}{more}",
            fix="invoke render" if stale else "fix the source, then invoke render",
        )
    return detail


@gate("deploy.nomad", inputs=manifest_inputs)
def nomad_jobs_valid(ctx: Context) -> str:
    detail = _run(lambda: checks.nomad_problems(ctx.root), "Nomad jobs")
    return (
        f"{detail}: parse, fit the jobspec, HCL = JSON, scaling bounds and target-value policy, "
        "intentions = flows"
    )


@gate("deploy.k8s", inputs=manifest_inputs)
def k8s_manifests_valid(ctx: Context) -> str:
    detail = _run(lambda: checks.k8s_problems(ctx.root), "Kubernetes manifests")
    return f"{detail} (strict); probes, limits, non-root, HPA bounds, NetworkPolicies = flows"
