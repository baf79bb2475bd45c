"""The whole system on a real Docker engine (no fake): the stage 14 gate's scenario, run as a test
in a project of its own (unique names, a free loopback port), torn down afterwards; plus the CA
bundle check: the build stage trusts it, the final image does not hold it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from caravan_workspace import paths
from caravan_workspace.images import docker
from caravan_workspace.images.build import CA_NAME, build_all
from caravan_workspace.registry import Context, GateFailure
from caravan_workspace.stages.deploy import images_build_and_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ctx() -> Context:
    if shutil.which("docker") is None:
        pytest.fail("no docker command: apt-get install docker.io, then start dockerd")
    return Context(root=ROOT, state_dir=paths.state_dir(ROOT), progress=print)


def test_the_gate_scenario_passes_on_docker(ctx: Context) -> None:
    detail = images_build_and_run(ctx)
    assert "confirmed" in detail and "403" in detail
    leftovers = docker.run(["ps", "-a", "--quiet", "--filter", "label=org.caravan.project"]).stdout.split()
    names = [docker.run(["inspect", "--format", "{{.Name}}", c]).stdout.strip() for c in leftovers]
    assert not [n for n in names if n.startswith("/caravan-gate-")]


def test_the_final_images_hold_no_build_ca_bundle(ctx: Context) -> None:
    images = build_all(ctx)
    bundle = os.environ.get("SSL_CERT_FILE")
    for image in images:
        absent = f'test -z "$(find / -xdev -name {CA_NAME} 2>/dev/null)"'
        probe = f"test ! -e /build-inputs && {absent} && echo clean"
        done = docker.run(["run", "--rm", "--entrypoint", "sh", image.tag, "-c", probe], check=False)
        assert done.stdout.strip() == "clean", f"{image.tag} holds the build's CA bundle: {done.stdout}"
        history = docker.run(["history", "--no-trunc", image.tag]).stdout
        assert CA_NAME not in history, f"{image.tag}: a layer of the final image names the CA bundle"
        if bundle:
            assert "CA_BUNDLE" not in history


def test_the_gate_fails_with_the_fix_when_no_engine_answers(ctx: Context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(GateFailure) as failure:
        images_build_and_run(ctx)
    assert failure.value.fix and "apt-get install docker.io" in failure.value.fix
