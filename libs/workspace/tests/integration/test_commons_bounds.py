"""A service installs against both ends of its caravan-commons range, from the workspace index."""

from __future__ import annotations

import subprocess
from pathlib import Path

from release_support import build_fake_commons, index_ctx_fixture  # noqa: F401  (fixture index_ctx)

from caravan_workspace import commons_bounds, release
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index


def _service(folder: Path) -> Path:
    (folder / "src" / "svc_bounds").mkdir(parents=True)
    (folder / "src" / "svc_bounds" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text(
        "[project]\n"
        'name = "svc-bounds"\n'
        'version = "0.1.0"\n'
        'requires-python = ">=3.11"\n'
        'dependencies = ["caravan-commons>=0.1,<1"]\n\n'
        "[dependency-groups]\n"
        'test = ["pytest>=8"]\n\n'
        "[build-system]\n"
        'requires = ["hatchling>=1.25"]\n'
        'build-backend = "hatchling.build"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["src/svc_bounds"]\n\n' + index.service_index_toml()
    )
    return folder


def test_lowest_and_highest_commons_in_range(index_ctx: Context, tmp_path: Path) -> None:
    index.ensure_index(index_ctx)
    for version in ("0.1.0", "0.2.0", "1.0.0"):  # 1.0.0 is outside the range
        release.publish(
            index_ctx, build_fake_commons(tmp_path / f"d{version}", version, "workspace", tmp_path)
        )
    service = _service(tmp_path / "svc-bounds")
    venv = tmp_path / "venv"
    env = index.uv_env(index_ctx)
    subprocess.run([index.uv_bin(), "venv", "--quiet", str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")

    def install(bound: str) -> str:
        subprocess.run(
            [index.uv_bin(), "pip", "install", "--quiet", "-p", python,
             *commons_bounds.install_args(service, bound)],
            check=True, env=env,
        )  # fmt: skip
        return subprocess.run(
            [python, "-c", commons_bounds.VERSION_PROBE], capture_output=True, text=True, check=True
        ).stdout.strip()

    assert install("lowest") == "0.1.0"
    assert install("highest") == "0.2.0"
    assert install("lowest") == "0.1.0"  # moves back down: the installed version does not stick
    assert commons_bounds.commons_requirement(service) == "caravan-commons>=0.1,<1"
    assert commons_bounds.testing_requirements(service) == ["pytest>=8"]
    assert commons_bounds.index_env(index_ctx.root)["UV_INDEX"].startswith("workspace=http://127.0.0.1:")
