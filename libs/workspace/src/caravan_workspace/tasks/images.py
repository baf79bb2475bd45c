"""`invoke images` (every deployable's image) and `invoke images.base` (the Debian base)."""

from __future__ import annotations

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from caravan_workspace.images.base import BaseImageError, ensure_base_image
from caravan_workspace.images.build import GOAL_BYTES, ImageBuildError, build_all
from caravan_workspace.images.docker import DockerError
from caravan_workspace.tasks.commons import workspace_context

FAILED = 1


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def _fail(exc: BaseImageError | DockerError | ImageBuildError) -> Exit:
    return Exit(f"error: {exc}" + (f" — fix: {exc.fix}" if exc.fix else ""), code=FAILED)


@task(
    name="build",
    default=True,
    help={
        "name": "only this deployable (repeatable): gateway, svc-a, ...",
        "jobs": "builds at a time (default 2)",
        "force": "build even when an image with the same inputs exists",
        "base-image": "the base image (default: $CARAVAN_BASE_IMAGE, else python:3.11-slim by digest "
        "when a registry answers, else the Debian base of `invoke images.base`)",
    },
    iterable=["name"],
)
def build(c: Context, name: list[str], jobs: int = 2, force: bool = False, base_image: str = "") -> None:
    """Build every deployable's image, tagged caravan/<name>:<version>-<git sha>; a no-op for an
    image whose inputs are unchanged. Prints each image's size."""
    try:
        images = build_all(workspace_context(), name, jobs=jobs, force=force, base_image=base_image or None)
    except (BaseImageError, DockerError, ImageBuildError) as exc:
        raise _fail(exc) from exc
    for image in images:
        what = f"built in {image.seconds:.0f}s" if image.built else "unchanged"
        goal = "" if image.size <= GOAL_BYTES else f" (over the {GOAL_BYTES // 1_000_000} MB goal)"
        print(f"{image.tag:<44} {image.size / 1e6:7.1f} MB  {what}{goal}")


@task(name="base", help={"rebuild": "build it again even when an image of the same recipe exists"})
def base(c: Context, rebuild: bool = False) -> None:
    """Build the Debian 12 + Python 3.11 base image from Debian packages (debootstrap + docker
    import), unless one of the same recipe exists; prints its tag."""
    try:
        tag = ensure_base_image(_progress, rebuild=rebuild)
    except (BaseImageError, DockerError) as exc:
        raise _fail(exc) from exc
    print(tag)


ns = Collection("images")
ns.add_task(build)
ns.add_task(base)
