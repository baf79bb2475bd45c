"""`invoke commons.release` on a small stand-in workspace: tests gate the upload, a version goes up once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from release_support import index_ctx_fixture  # noqa: F401  (fixture index_ctx)

from caravan_workspace import release
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index

PASSING = "def test_adds():\n    assert 1 + 1 == 2\n"
FAILING = "def test_adds():\n    assert 1 + 1 == 3\n"


def _stand_in_workspace(root: Path, version: str = "0.5.0", test: str = PASSING) -> None:
    """A workspace root with plan.toml and a tiny libs/commons named caravan-commons."""
    commons = root / "libs" / "commons"
    (commons / "src" / "caravan_commons").mkdir(parents=True)
    (commons / "tests").mkdir()
    (root / "plan.toml").write_text("# stand-in\n")
    (commons / "pyproject.toml").write_text(
        "[project]\n"
        'name = "caravan-commons"\n'
        f'version = "{version}"\n'
        'requires-python = ">=3.11"\n'
        "[dependency-groups]\n"
        'test = ["pytest>=8"]\n'
        "[build-system]\n"
        'requires = ["hatchling>=1.25"]\n'
        'build-backend = "hatchling.build"\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["src/caravan_commons"]\n'
    )
    (commons / "CHANGELOG.md").write_text(f"# Changelog\n\n## [{version}]\n- stand-in\n")
    (commons / "src" / "caravan_commons" / "__init__.py").write_text("")
    (commons / "tests" / "test_stand_in.py").write_text(test)


def _ctx(index_ctx: Context, root: Path) -> Context:
    return Context(root=root, state_dir=index_ctx.state_dir)


def test_failing_tests_stop_the_release_before_any_upload(index_ctx: Context, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _stand_in_workspace(root, test=FAILING)
    with pytest.raises(release.ReleaseError, match="commons' tests failed"):
        release.release(_ctx(index_ctx, root))
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == set()


def test_tested_release_is_published_once(index_ctx: Context, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _stand_in_workspace(root)
    ctx = _ctx(index_ctx, root)
    result = release.release(ctx)
    assert result.version == "0.5.0" and result.tested_with == "pytest"
    assert sorted(result.files) == ["caravan_commons-0.5.0-py3-none-any.whl", "caravan_commons-0.5.0.tar.gz"]
    assert set(index.listed_files(index.index_url(ctx), "caravan-commons")) == set(result.files)
    # the refusal comes first: a now-failing suite is not even run for a published version
    (root / "libs" / "commons" / "tests" / "test_stand_in.py").write_text(FAILING)
    with pytest.raises(release.AlreadyPublished, match=r"caravan-commons 0\.5\.0 is already published"):
        release.release(ctx)


def _invoke(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tasks = tmp_path / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "tasks.py").write_text(
        "from invoke import Collection\n"
        "from caravan_workspace.tasks import commons\n"
        "ns = Collection(commons.ns)\n"
    )
    env = {**os.environ, "CARAVAN_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(tasks), *args],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_cli_release_then_refusal_in_one_line(index_ctx: Context, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _stand_in_workspace(root)
    first = _invoke(root, tmp_path, "commons.release", "--skip-tests")
    assert first.returncode == 0, first.stderr
    assert "published caravan-commons 0.5.0" in first.stdout
    second = _invoke(root, tmp_path, "commons.release", "--skip-tests")
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        "error: caravan-commons 0.5.0 is already published on the workspace index; releases are immutable: "
        "bump the version in libs/commons/pyproject.toml and add a CHANGELOG.md section"
    ]
    mismatch = _invoke(root, tmp_path, "commons.release", "--version", "0.6.0")
    assert mismatch.returncode == 1
    assert mismatch.stderr.strip() == (
        "error: --version 0.6.0 does not match libs/commons/pyproject.toml (version 0.5.0)"
    )
    listing = _invoke(root, tmp_path, "commons.index")
    assert listing.returncode == 0 and "caravan-commons versions: 0.5.0" in listing.stdout


NOXFILE = """
import sys

import nox

nox.options.default_venv_backend = "uv"


@nox.session(python=False)
def commons(session):
    session.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "libs/commons/tests")
"""


def test_release_runs_the_nox_session_commons_when_there_is_one(index_ctx: Context, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _stand_in_workspace(root, test=FAILING)
    (root / "noxfile.py").write_text(NOXFILE)
    ctx = _ctx(index_ctx, root)
    with pytest.raises(release.ReleaseError, match="commons' tests failed"):
        release.release(ctx)
    assert index.published_versions(index.index_url(ctx), "caravan-commons") == set()
    (root / "libs" / "commons" / "tests" / "test_stand_in.py").write_text(PASSING)
    assert release.release(ctx).tested_with == "nox -s commons"
