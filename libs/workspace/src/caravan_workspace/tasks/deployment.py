"""`invoke render`, `invoke deploy --target nomad|k8s|docker`, `invoke scale NAME N`."""

from __future__ import annotations

import importlib

from invoke import Context, task
from invoke.exceptions import Exit

from caravan_workspace import render
from caravan_workspace.deploy import DeployError
from caravan_workspace.foundation import FoundationError
from caravan_workspace.render.model import RenderError, environment_names
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.programs import RuntimeError_
from caravan_workspace.services import DeclarationError
from caravan_workspace.tasks.common import BAD_INPUT, FAILED, workspace
from caravan_workspace.tasks.deploy import target_deploy

#: target → module of caravan_workspace.deploy with a ``deploy(root, env, *, tag, dry_run, out)``;
#: docker runs here and deploys the images `invoke images` built (caravan_workspace.tasks.deploy).
TARGETS = {"nomad": "nomad", "k8s": "k8s", "docker": "docker"}
SOURCE_ERRORS = (RenderError, DeclarationError, FoundationError)


@task(name="render", help={"check": "only report files that differ from a fresh render (exit 1 if any)"})
def render_files(c: Context, check: bool = False) -> None:
    """Render the Nomad jobs, Consul config entries and Kubernetes manifests from the declarations."""
    ws = workspace()
    try:
        files = render.render(ws.ctx.root)
        if check:
            stale = render.drift(ws.ctx.root, files)
            if stale:
                raise Exit(
                    "\n".join(stale) + "\nerror: rendered files are stale: run `invoke render`", code=FAILED
                )
            print(f"{len(files)} rendered files match the source")
            return
        touched = render.write(ws.ctx.root, files)
    except SOURCE_ERRORS as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    for path in touched:
        print(f"wrote {path}" if (ws.ctx.root / path).exists() else f"removed {path}")
    print(f"{len(files)} files rendered, {len(touched)} changed (nomad/, k8s/)")


@task(
    help={
        "target": "nomad, k8s or docker",
        "env": "environment file of deploy/environments (dev, prod)",
        "tag": "image tag to deploy (default: the environment's)",
        "dry_run": "print the plans / what would be applied, change nothing",
    }
)
def deploy(c: Context, target: str, env: str = "dev", tag: str = "", dry_run: bool = False) -> None:
    """Deploy the system: on the local Docker engine, to Nomad + Consul (health-gated, in dependency
    order) or to Kubernetes."""
    ws = workspace()
    if target not in TARGETS:
        raise Exit(f"error: unknown target {target!r} (targets: {', '.join(TARGETS)})", code=BAD_INPUT)
    names = environment_names(ws.ctx.root)
    if env not in names:
        raise Exit(f"error: unknown environment {env!r} ({', '.join(names)})", code=BAD_INPUT)
    if target == "docker":
        if tag or dry_run:
            raise Exit(
                "error: the docker target runs the images `invoke images` built here; "
                "--tag and --dry-run are for nomad and k8s",
                code=BAD_INPUT,
            )
        target_deploy(target)
        return
    try:
        module = importlib.import_module(f"caravan_workspace.deploy.{TARGETS[target]}")
    except ModuleNotFoundError as exc:
        raise Exit(f"error: target {target!r} is not available here ({exc})", code=FAILED) from exc
    try:
        module.deploy(ws.ctx.root, env, tag=tag or None, dry_run=dry_run, out=print)
    except SOURCE_ERRORS as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    except DeployError as exc:
        raise Exit(f"error: {exc}", code=FAILED) from exc


@task(help={"name": "a service (svc-a, ...)", "count": "instances to run, within service.toml's bounds"})
def scale(c: Context, name: str, count: str) -> None:
    """Run COUNT instances of a service on the local runtime; the gateway balances across them."""
    if not count.isdigit():
        raise Exit(f"error: COUNT must be a whole number, not {count!r}", code=BAD_INPUT)
    ws = workspace()
    ctx = ws.context(lambda m: print(f"scale: {m}"))
    try:
        rt = LocalRuntime(ctx)
        changed = rt.scale(name, int(count))
    except RuntimeError_ as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT if "scales between" in str(exc) or "no service" in str(exc)
                   else FAILED) from exc  # fmt: skip
    print(
        f"{name}: {count} instance{'s' if count != '1' else ''} ready ({', '.join(changed) or 'unchanged'})"
    )
