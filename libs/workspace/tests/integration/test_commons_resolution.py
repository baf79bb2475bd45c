"""caravan-commons resolves from the workspace index only, even when a "public" index offers more.

Two real pypiservers on loopback: the workspace index (authenticated upload, as provisioned) holds
caravan-commons 0.1.0; a second one playing PyPI holds an impostor caravan-commons 0.99.0 — higher,
and inside the services' range ``>=0.1,<1``. A project configured like every service (the same
pyproject fragment the template renders) locks and installs the workspace build. pip with
``--extra-index-url`` takes the impostor: that is why services never use it.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from release_support import build_fake_commons, index_ctx_fixture, start_public_index  # noqa: F401  (fixture index_ctx)

from caravan_workspace import release
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.runtime.supervisor import Supervisor

RANGE = "caravan-commons>=0.1,<1"


def _service_project(folder: Path) -> Path:
    """A minimal project declared exactly like a rendered service (virtual: nothing to build)."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        "[project]\n"
        'name = "svc-probe"\n'
        'version = "0.1.0"\n'
        'requires-python = ">=3.11"\n'
        f'dependencies = ["{RANGE}"]\n\n' + index.service_index_toml()
    )
    return folder


@pytest.fixture
def two_indexes(index_ctx: Context, tmp_path: Path) -> tuple[Context, str]:
    index.ensure_index(index_ctx)
    release.publish(index_ctx, build_fake_commons(tmp_path / "ws-dist", "0.1.0", "workspace", tmp_path))
    impostor = build_fake_commons(tmp_path / "pub-dist", "0.99.0", "impostor", tmp_path)
    public_url = start_public_index(index_ctx, impostor)
    assert index.published_versions(public_url, "caravan-commons") == {"0.99.0"}
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == {"0.1.0"}
    return index_ctx, public_url


def _uv(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [index.uv_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_uv_takes_the_workspace_version_over_a_higher_public_one(
    two_indexes: tuple[Context, str], tmp_path: Path
) -> None:
    ctx, public_url = two_indexes
    project = _service_project(tmp_path / "svc-probe")
    env = index.uv_env(ctx)  # UV_INDEX=workspace=<this test's index URL>
    env["UV_DEFAULT_INDEX"] = public_url  # the "public" index is the default one
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")

    locked = _uv(["lock", "--no-config"], project, env)
    assert locked.returncode == 0, locked.stderr
    lock = tomllib.loads((project / "uv.lock").read_text())
    commons = next(p for p in lock["package"] if p["name"] == "caravan-commons")
    assert commons["version"] == "0.1.0"
    assert commons["source"] == {"registry": index.index_url(ctx)}

    synced = _uv(["sync", "--no-config", "--locked"], project, env)
    assert synced.returncode == 0, synced.stderr
    origin = subprocess.run(
        [
            str(project / ".venv" / "bin" / "python"),
            "-c",
            "import caravan_commons; print(caravan_commons.ORIGIN)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert origin == "workspace 0.1.0"


def test_without_the_workspace_index_resolution_fails_instead_of_taking_the_impostor(
    two_indexes: tuple[Context, str], tmp_path: Path
) -> None:
    ctx, public_url = two_indexes
    project = _service_project(tmp_path / "svc-probe")
    Supervisor(ctx.state_dir).stop(index.PROGRAM)  # the workspace index is down
    env = index.uv_env(ctx)
    env["UV_DEFAULT_INDEX"] = public_url
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    locked = _uv(["lock", "--no-config"], project, env)
    assert locked.returncode != 0
    assert "Connection refused" in locked.stderr or "connect" in locked.stderr.lower()
    assert not (project / "uv.lock").exists()


def test_pip_with_extra_index_url_installs_the_impostor(
    two_indexes: tuple[Context, str], tmp_path: Path
) -> None:
    """The failure mode the explicit index avoids: pip merges indexes and picks the highest version."""
    ctx, public_url = two_indexes
    venv = tmp_path / "pip-venv"
    subprocess.run([index.uv_bin(), "venv", "--quiet", "--seed", str(venv)], check=True, env=index.uv_env())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # ignore the machine's pip.conf and its extra indexes
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--index-url",
            index.index_url(ctx),
            "--extra-index-url",
            public_url,
            RANGE,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    origin = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import caravan_commons; print(caravan_commons.ORIGIN)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert origin == "impostor 0.99.0"
