"""Deployments: what stage 14 produces, read where it lives.

* **Stage 14's gates**: their last results in the state file.
* **The Docker target, live**: :func:`caravan_workspace.deploy.docker.status` — the project's
  containers (``CARAVAN_DOCKER_PROJECT``, default ``caravan``) with image, state and health — when
  a Docker engine answers; otherwise why not (a banner).
* **The environments**: ``deploy/environments/*.toml`` through the render model — per deployable
  its image and instance count as ``invoke deploy --target nomad|k8s --env ENV`` would deploy
  them; with a Nomad cluster configured (``NOMAD_ADDR``) each job links to the cluster's UI.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from caravan_workspace.console_web.readers.plan import StageRow
from caravan_workspace.deploy import docker as docker_target
from caravan_workspace.images import docker
from caravan_workspace.images.docker import DockerError
from caravan_workspace.registry import Context
from caravan_workspace.render.model import RenderError, environment_names, load_deployment, load_environment

DEPLOYMENT_STAGE = 14
#: The engine is local; a page must not hang on one that does not answer.
ENGINE_TIMEOUT_S = 5


@dataclass(frozen=True)
class DockerView:
    project: str
    containers: list[dict[str, str]]  # docker.status's rows: container, image, state, health, ...
    problem: str  # "" when the engine answered


@dataclass(frozen=True)
class DeployableRow:
    name: str
    image: str
    instances: int
    nomad_job: str  # the job's page in the Nomad UI, "" without NOMAD_ADDR


@dataclass(frozen=True)
class EnvironmentView:
    name: str
    namespace: str
    datacenters: str
    deployables: list[DeployableRow]
    problem: str = ""


@dataclass(frozen=True)
class DeploymentsView:
    stage: StageRow | None  # stage 14 with its gates' last results (None: not in the plan)
    docker: DockerView
    environments: list[EnvironmentView]
    nomad_ui: str  # the cluster's jobs in its UI, "" without NOMAD_ADDR


def nomad_address() -> str:
    return os.environ.get("NOMAD_ADDR", "").strip().rstrip("/")


def docker_view(ctx: Context) -> DockerView:
    project = docker_target.project_name()
    try:
        version = ["version", "--format", "{{.Server.Version}}"]
        done = docker.run(version, check=False, timeout=ENGINE_TIMEOUT_S)
        if done.returncode != 0 or not done.stdout.strip():
            reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            return DockerView(project, [], f"no Docker engine answers ({reason})")
        return DockerView(project, docker_target.status(ctx, project=project), "")
    except DockerError as exc:
        return DockerView(project, [], str(exc))
    except (OSError, subprocess.SubprocessError) as exc:  # the subprocess itself, or its timeout
        return DockerView(project, [], f"the docker command failed: {exc}")


def environments_view(ctx: Context, nomad: str) -> list[EnvironmentView]:
    names = environment_names(ctx.root)
    try:
        deployment = load_deployment(ctx.root)
    except RenderError as exc:
        return [EnvironmentView(name, "", "", [], str(exc)) for name in names]
    views = []
    for name in names:
        try:
            env = load_environment(ctx.root, name)
        except RenderError as exc:
            views.append(EnvironmentView(name, "", "", [], str(exc)))
            continue
        rows = [
            DeployableRow(d.name, d.image(env), d.count(env), f"{nomad}/ui/jobs/{d.name}" if nomad else "")
            for d in (deployment.deployables[n] for n in deployment.order)
        ]
        views.append(EnvironmentView(env.name, env.namespace, ", ".join(env.datacenters), rows))
    return views


def deployments_view(ctx: Context, stage: StageRow | None) -> DeploymentsView:
    nomad = nomad_address()
    return DeploymentsView(
        stage=stage,
        docker=docker_view(ctx),
        environments=environments_view(ctx, nomad),
        nomad_ui=f"{nomad}/ui/jobs" if nomad else "",
    )
