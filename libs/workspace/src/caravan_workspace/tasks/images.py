"""`invoke images` (every deployable's image), `invoke images.base` (the Debian base) and
`invoke images.sbom` (a CycloneDX SBOM per image)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from caravan_workspace.images.base import BaseImageError, ensure_base_image
from caravan_workspace.images.build import GOAL_BYTES, ImageBuildError, build_all
from caravan_workspace.images.docker import DockerError
from caravan_workspace.tasks.common import workspace_context

if TYPE_CHECKING:
    from caravan_workspace.images.sbom import SbomError

FAILED = 1


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def _fail(exc: BaseImageError | DockerError | ImageBuildError | SbomError) -> Exit:
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


@task(
    name="sbom",
    help={
        "name": "only this deployable's image (repeatable): gateway, svc-a, ...",
        "image": "an image reference instead (repeatable): any image in the engine, nothing is built",
        "out": "the folder to write to (default build/sbom/images)",
        "jobs": "images read at a time (default 2)",
    },
    iterable=["name", "image"],
)
def sbom(c: Context, name: list[str], image: list[str], out: str = "", jobs: int = 2) -> None:
    """A CycloneDX SBOM per image, read from inside it (its Python distributions and Debian
    packages), in build/sbom/images/<image>.cdx.json. By default every deployable's image, built
    first (a no-op when unchanged); nothing is written unless every image could be read."""
    from caravan_workspace.images.sbom import SbomError, file_name, write_image_sboms  # slow to load

    ctx = workspace_context()
    folder = Path(out) if out else ctx.root / "build" / "sbom" / "images"
    if image and name:
        raise Exit("error: give deployables (--name) or image references (--image), not both", code=FAILED)
    try:
        if image:
            wanted = {file_name(reference): reference for reference in image}
        else:
            wanted = {i.deployable.name: i.tag for i in build_all(ctx, name)}
        started = time.monotonic()
        written = write_image_sboms(wanted, folder, jobs=jobs)
    except (BaseImageError, DockerError, ImageBuildError, SbomError) as exc:
        raise _fail(exc) from exc
    for document, path in written:
        print(
            f"{document.image.reference:<44} {document.python:4} Python distributions "
            f"{document.debian:4} Debian packages  {path}"
        )
    print(f"{len(written)} SBOMs in {time.monotonic() - started:.1f}s")


ns = Collection("images")
ns.add_task(build)
ns.add_task(base)
ns.add_task(sbom)
