"""Shared pieces of the release/index/template integration tests (imported by those test modules)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.runtime.supervisor import (
    Supervisor,
    _marked_processes,
    _pid_alive,
    _terminate,
    free_port,
)

REPO_ROOT = Path(__file__).resolve().parents[4]


def stop_everything(state_dir: Path) -> None:
    """Stop the supervisord of a test state folder and every process it started, whatever happened."""
    sv = Supervisor(state_dir)
    with contextlib.suppress(Exception):
        sv.shutdown(timeout=20)
    pid_text = sv.pidfile.read_text().strip() if sv.pidfile.exists() else ""
    if pid_text.isdigit() and _pid_alive(int(pid_text)):
        _terminate([int(pid_text)], grace=5)
    _terminate(_marked_processes(str(sv.home)), grace=5)


@pytest.fixture(name="index_ctx")
def index_ctx_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A workspace context on the real repository with a temporary state folder and index port."""
    monkeypatch.setenv(index.PORT_ENV, str(free_port()))
    state = tmp_path / "state"
    ctx = Context(root=REPO_ROOT, state_dir=state)
    try:
        yield ctx
    finally:
        stop_everything(state)


def build_fake_commons(out_dir: Path, version: str, origin: str, work: Path) -> list[Path]:
    """A tiny distribution *named* caravan-commons whose module records where it came from."""
    project = work / f"fake-{origin}-{version}"
    (project / "src" / "caravan_commons").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        "[project]\n"
        'name = "caravan-commons"\n'
        f'version = "{version}"\n'
        'requires-python = ">=3.11"\n'
        "[build-system]\n"
        'requires = ["hatchling>=1.25"]\n'
        'build-backend = "hatchling.build"\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["src/caravan_commons"]\n'
    )
    (project / "src" / "caravan_commons" / "__init__.py").write_text(f'ORIGIN = "{origin} {version}"\n')
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [index.uv_bin(), "build", "--quiet", "-o", str(out_dir), str(project)],
        check=True,
        env=index.uv_env(),
    )
    return sorted(out_dir.glob(f"caravan_commons-{version}*"))


def start_public_index(ctx: Context, files: list[Path]) -> str:
    """A second pypiserver under the same test supervisor, playing the public index (no auth)."""
    packages = ctx.state_dir / "public-index"
    packages.mkdir(parents=True, exist_ok=True)
    for f in files:
        (packages / f.name).write_bytes(f.read_bytes())
    port = free_port()
    Supervisor(ctx.state_dir).add_program(
        "public-index",
        [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-a",
            ".",
            "-P",
            ".",
            "--disable-fallback",
            "--health-endpoint",
            "/health",
            str(packages),
        ],
        startsecs=0,
    )
    deadline = time.monotonic() + 30
    while not index.health_ok(port):
        assert time.monotonic() < deadline, "the public stand-in index did not start"
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}/simple/"


def http_status(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
