"""Releasing caravan-commons to the workspace package index.

``release(ctx)``: check the version (pyproject) against CHANGELOG.md and the caller's ``--version``,
make sure the index runs, refuse a version the index already serves, run commons' tests (the nox
session ``commons`` when the workspace has one, else pytest in a uv virtualenv), build sdist and
wheel with ``uv build``, publish them with ``uv publish`` (authenticated upload), then read the
index back to confirm it serves the new version.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.registry import Context
from caravan_workspace.runtime import index

COMMONS = "libs/commons"
DIST_NAME = "caravan-commons"


class ReleaseError(Exception):
    """A release step failed or a precondition does not hold; the message is one line."""


class AlreadyPublished(ReleaseError):
    """The version being released is already on the index: releases are immutable."""


@dataclass(frozen=True)
class ReleaseResult:
    version: str
    files: tuple[str, ...]
    url: str
    tested_with: str


def commons_dir(ctx: Context) -> Path:
    return ctx.root / COMMONS


def project_version(project_dir: Path) -> str:
    path = project_dir / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ReleaseError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{path} is not valid TOML: {exc}") from exc
    version = data.get("project", {}).get("version")
    if not isinstance(version, str) or not version:
        raise ReleaseError(f"{path} has no [project] version")
    return version


def changelog_versions(changelog: Path) -> list[str]:
    """Versions with a section in a Keep-a-Changelog style file: ``## [1.2.0]`` or ``## 1.2.0``."""
    try:
        text = changelog.read_text()
    except FileNotFoundError:
        return []
    found = re.findall(r"^##\s+\[?v?([0-9][0-9A-Za-z.+-]*)\]?", text, flags=re.MULTILINE)
    return found


def check_version(ctx: Context, requested: str | None = None) -> str:
    """The version to release: the pyproject's, which must match ``requested`` (when given) and
    have a CHANGELOG.md section."""
    folder = commons_dir(ctx)
    version = project_version(folder)
    if requested is not None and requested.removeprefix("v") != version:
        raise ReleaseError(
            f"--version {requested} does not match {COMMONS}/pyproject.toml (version {version})"
        )
    if version not in changelog_versions(folder / "CHANGELOG.md"):
        raise ReleaseError(f"{COMMONS}/CHANGELOG.md has no section for {version}: add '## [{version}]'")
    return version


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], what: str, capture: bool = False) -> str:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-1:] if capture else []
        reason = f": {tail[0]}" if tail else f" (exit {proc.returncode})"
        raise ReleaseError(f"{what} failed{reason}")
    return proc.stdout or ""


def _has_nox_session(root: Path, name: str) -> bool:
    noxfile = root / "noxfile.py"
    if not noxfile.exists():
        return False
    return re.search(rf"^def {re.escape(name)}\(", noxfile.read_text(), flags=re.MULTILINE) is not None


def run_tests(ctx: Context) -> str:
    """Run commons' test suite; returns how (``nox -s commons`` or ``pytest``)."""
    env = index.uv_env()
    if _has_nox_session(ctx.root, "commons"):
        ctx.progress("testing caravan-commons (nox -s commons)")
        _run([sys.executable, "-m", "nox", "-s", "commons"], cwd=ctx.root, env=env, what="commons' tests")
        return "nox -s commons"
    ctx.progress("testing caravan-commons (pytest in a uv virtualenv)")
    folder = commons_dir(ctx)
    venv = ctx.state_dir / "venvs" / "commons-release"
    uv = index.uv_bin()
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    test_deps = [d for d in pyproject.get("dependency-groups", {}).get("test", []) if isinstance(d, str)]
    _run([uv, "venv", "--quiet", "--allow-existing", str(venv)], cwd=ctx.root, env=env, what="uv venv")
    python = str(venv / "bin" / "python")
    _run(
        [uv, "pip", "install", "--quiet", "-p", python, "-e", str(folder), *test_deps],
        cwd=ctx.root,
        env=env,
        what="installing commons for its tests",
    )
    _run([python, "-m", "pytest", "-q", str(folder / "tests")], cwd=folder, env=env, what="commons' tests")
    return "pytest"


def build(ctx: Context, out_dir: Path, version: str) -> list[Path]:
    """sdist + wheel of libs/commons into ``out_dir`` (fresh, so only this version's files)."""
    ctx.progress(f"building caravan-commons {version} (uv build)")
    _run(
        [index.uv_bin(), "build", "--quiet", "-o", str(out_dir), str(commons_dir(ctx))],
        cwd=ctx.root,
        env=index.uv_env(),
        what="uv build",
        capture=True,
    )
    files = sorted(p for p in out_dir.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    versions = {index.file_version(p.name) for p in files}
    if not files or versions != {version}:
        names = ", ".join(p.name for p in files) or "nothing"
        raise ReleaseError(f"uv build produced {names}, expected caravan-commons {version}")
    return files


def publish(ctx: Context, files: list[Path]) -> None:
    """Upload with the workspace credentials (passed in the environment, not on the command line)."""
    creds = index.credentials(ctx)
    env = index.uv_env()
    env["UV_PUBLISH_USERNAME"] = creds.username
    env["UV_PUBLISH_PASSWORD"] = creds.password
    ctx.progress(f"publishing {', '.join(p.name for p in files)} to {index.upload_url(ctx)}")
    _run(
        [index.uv_bin(), "publish", "--publish-url", index.upload_url(ctx), *map(str, files)],
        cwd=ctx.root,
        env=env,
        what="uv publish",
        capture=True,
    )


def is_published(ctx: Context, version: str) -> bool:
    return version in index.published_versions(index.index_url(ctx), DIST_NAME)


def refuse_if_published(ctx: Context, version: str) -> None:
    if is_published(ctx, version):
        raise AlreadyPublished(
            f"{DIST_NAME} {version} is already published on the workspace index; releases are immutable: "
            f"bump the version in {COMMONS}/pyproject.toml and add a CHANGELOG.md section"
        )


def release(ctx: Context, *, version: str | None = None, skip_tests: bool = False) -> ReleaseResult:
    checked = check_version(ctx, version)
    try:
        index.ensure_index(ctx)
    except index.PackageIndexError as exc:
        raise ReleaseError(str(exc)) from exc
    refuse_if_published(ctx, checked)
    tested_with = "skipped (--skip-tests)" if skip_tests else run_tests(ctx)
    with tempfile.TemporaryDirectory(prefix="caravan-commons-dist-") as tmp:
        files = build(ctx, Path(tmp), checked)
        refuse_if_published(ctx, checked)  # someone may have published while the tests ran
        publish(ctx, files)
    if not is_published(ctx, checked):
        raise ReleaseError(f"the index does not list {DIST_NAME} {checked} after the upload")
    return ReleaseResult(
        version=checked, files=tuple(p.name for p in files), url=index.index_url(ctx), tested_with=tested_with
    )
