"""`invoke images` (every deployable's image) and `invoke images.base` (the Debian base)."""

from __future__ import annotations

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from caravan_workspace.images.base import BaseImageError, ensure_base_image
from caravan_workspace.images.docker import DockerError

FAILED = 1


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


@task(name="base", help={"rebuild": "build it again even when an image of the same recipe exists"})
def base(c: Context, rebuild: bool = False) -> None:
    """Build the Debian 12 + Python 3.11 base image from Debian packages (debootstrap + docker
    import), unless one of the same recipe exists; prints its tag."""
    try:
        tag = ensure_base_image(_progress, rebuild=rebuild)
    except (BaseImageError, DockerError) as exc:
        raise Exit(f"error: {exc}" + (f" — fix: {exc.fix}" if exc.fix else ""), code=FAILED) from exc
    print(tag)


ns = Collection("images")
ns.add_task(base)
