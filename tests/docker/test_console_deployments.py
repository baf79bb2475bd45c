"""The console's Deployments page reads the Docker target's live state from a real engine: a
container of a project of its own (unique name, an image built from scratch here, never pulled)
shows up with its image and state; removed afterwards."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from caravan_workspace.console_web.readers.deployments import docker_view
from caravan_workspace.deploy.docker import LABEL, PROJECT_ENV
from caravan_workspace.images import docker
from caravan_workspace.registry import Context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if shutil.which("docker") is None:
        pytest.fail("no docker command: apt-get install docker.io, then start dockerd")
    name = f"caravan-console-{uuid.uuid4().hex[:8]}"
    (tmp_path / "marker").write_text("console test\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    docker.run(["build", "--quiet", "--tag", f"{name}:probe", str(tmp_path)])
    monkeypatch.setenv(PROJECT_ENV, name)
    try:
        label = f"{LABEL}={name}"
        docker.run(["create", "--name", f"{name}-probe-1", "--label", label, f"{name}:probe", "/marker"])
        yield name
    finally:
        docker.run(["rm", "--force", f"{name}-probe-1"], check=False)
        docker.run(["image", "rm", "--force", f"{name}:probe"], check=False)


def test_the_deployments_reader_lists_the_projects_containers(project: str, tmp_path: Path) -> None:
    view = docker_view(Context(ROOT, tmp_path / "state"))
    assert view.problem == "" and view.project == project
    assert [(c["container"], c["image"], c["state"]) for c in view.containers] == [
        (f"{project}-probe-1", f"{project}:probe", "created")
    ]
