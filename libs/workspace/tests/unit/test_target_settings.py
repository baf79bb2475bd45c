"""Every deploy target carries the settings the local runtime gives each program, but for the few
that only make sense on one machine (each listed here with its reason). A setting added to the
local runtime fails this test until the Docker target and the rendered Nomad jobs and Kubernetes
manifests carry it too, or it is listed below."""

from __future__ import annotations

from pathlib import Path

import pytest

from caravan_workspace.deploy import docker
from caravan_workspace.registry import Context
from caravan_workspace.render import nomad
from caravan_workspace.render.model import load_deployment, load_environment
from caravan_workspace.runtime import gateway
from caravan_workspace.runtime.local import LocalRuntime

#: Local settings a target does without, and why.
LOCAL_ONLY = {
    "CARAVAN_DISCOVERY_CATALOG": "the local discovery backend's file; targets use static discovery",
    "CARAVAN_SOURCE_DIGEST": "restarts a local instance after a code change; an image has one source",
    "CARAVAN_SERVICE_VERSION": "the package's own version is the default, and an image holds one",
}
DOCKER_ONLY_IN_IMAGE = {  # the images' ENV sets them (Dockerfile)
    "CARAVAN_HOST": "the image listens on 0.0.0.0",
    "CARAVAN_PORT": "the image listens on 8000",
    "PYTHONUNBUFFERED": "set in the image",
}
CLUSTER = {  # Nomad jobs and Kubernetes manifests
    "CARAVAN_DATABASE_URL": "a secret: a Nomad template into the environment, a Kubernetes secretKeyRef",
    "CARAVAN_INSTANCE_ID": "optional; the scheduler names the instances (allocation, pod)",
    "CARAVAN_TRACE_FILE": "no span files in a cluster",
    "CARAVAN_RATE_PER_SECOND": "the gateway's defaults hold (docs/deploy.md)",
}


@pytest.fixture
def local(repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    monkeypatch.setenv("CARAVAN_GATEWAY_RATE_PER_SECOND", "500")
    rt = LocalRuntime(Context(root=repo_root, state_dir=tmp_path / "local"))
    settings = {name: set(rt.service_programs(s)[0].env) for name, s in rt.services.items()}
    settings["gateway"] = set(gateway.program(rt, Path("python")).env)
    return settings


def test_the_docker_target_carries_every_local_setting(repo_root, tmp_path, local) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(root=repo_root, state_dir=tmp_path / "docker")
    _, containers = docker.render(ctx, "t", {m: f"caravan/{m}:t" for m in local}, port=18090)
    for c in containers:
        missing = local[c.member] - set(c.env) - set(LOCAL_ONLY) - set(DOCKER_ONLY_IN_IMAGE)
        assert not missing, f"{c.member}: the Docker target lacks {sorted(missing)}"


def test_the_rendered_jobs_and_manifests_carry_every_local_setting(repo_root, local) -> None:  # type: ignore[no-untyped-def]
    deployment = load_deployment(repo_root)
    env = load_environment(repo_root, "dev")
    for name, d in deployment.deployables.items():
        # the Kubernetes ConfigMaps hold the same settings (parity_problems checks that)
        missing = local[name] - set(nomad.task_env(d, deployment, env)) - set(LOCAL_ONLY) - set(CLUSTER)
        assert not missing, f"{name}: the Nomad job and Kubernetes manifests lack {sorted(missing)}"
