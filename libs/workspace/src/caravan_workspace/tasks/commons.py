"""`invoke commons.release`, `invoke commons.index`: caravan-commons on the workspace package index."""

from __future__ import annotations

from invoke import Collection, Context, task
from invoke.exceptions import Exit
from packaging.version import InvalidVersion, Version

from caravan_workspace import release as releases
from caravan_workspace.runtime import index
from caravan_workspace.tasks.common import workspace_context

FAILED = 1


@task(
    name="release",
    help={
        "version": "the version you mean to release; must equal libs/commons/pyproject.toml's",
        "skip-tests": "do not run commons' tests first (faster; the build and upload still happen)",
    },
)
def release(c: Context, version: str | None = None, skip_tests: bool = False) -> None:
    """Test, build and publish caravan-commons to the workspace index (refuses a published version)."""
    ctx = workspace_context()
    try:
        result = releases.release(ctx, version=version, skip_tests=skip_tests)
    except releases.ReleaseError as exc:
        raise Exit(f"error: {exc}", code=FAILED) from exc
    print(f"published caravan-commons {result.version} ({', '.join(result.files)}) to {result.url}")
    print(f"tests: {result.tested_with}")


@task(name="index")
def show_index(c: Context) -> None:
    """Start the workspace package index if needed; print its URL and the published commons versions."""
    ctx = workspace_context()
    try:
        state = index.ensure_index(ctx)
        versions = index.published_versions(state.url, releases.DIST_NAME)
    except index.PackageIndexError as exc:
        raise Exit(f"error: {exc}", code=FAILED) from exc
    print(f"index: {state.url}")
    print(f"credentials: {index.credentials_file(ctx)} (0600)")
    listed = ", ".join(sorted(versions, key=_version_key)) or "none yet"
    print(f"caravan-commons versions: {listed}")


def _version_key(text: str) -> tuple[int, Version | None, str]:
    try:
        return (0, Version(text), text)
    except InvalidVersion:
        return (1, None, text)


ns = Collection("commons")
ns.add_task(release)
ns.add_task(show_index)
