"""The Debian 12 base image, built from Debian packages where no registry can be reached.

The service images take their base as a build argument (``BASE_IMAGE``). With a registry it is the
official ``python:3.11-slim`` pinned by digest; without one, :func:`ensure_base_image` builds an
equivalent: ``debootstrap`` lays a minimal Debian 12 with Python 3.11 (venv, pip, CA
certificates) into a folder, which is trimmed (docs, man pages, apt lists and caches) and
imported with ``docker import``. The tag carries a digest of the recipe, so an image that exists
with the same recipe is reused at once and a changed recipe builds a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from caravan_workspace.images import docker
from caravan_workspace.images.docker import DockerError

REPOSITORY = "caravan/base"
MIRROR_ENV = "CARAVAN_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: What python:3.11-slim offers that our images use: python (and python3), venv, pip, CA roots.
PACKAGES = ("python3.11", "python3.11-venv", "python3-pip", "python-is-python3", "ca-certificates")
#: Removed from the tree before import: nothing at run time reads them.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/log",
)
#: Bump when the way the tree is made or trimmed changes (it is part of the recipe digest).
RECIPE_VERSION = 1

Progress = Callable[[str], None]


class BaseImageError(Exception):
    """The base image could not be built; ``fix`` names what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class Recipe:
    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = PACKAGES
    trim: tuple[str, ...] = TRIM
    mirror: str = DEFAULT_MIRROR
    version: int = RECIPE_VERSION

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.suite}-py311-{self.digest}"


def default_recipe() -> Recipe:
    return Recipe(mirror=os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR)


def _silent(message: str) -> None:
    return None


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One base build at a time on this machine (several worktrees or sessions may ask at once)."""
    path = Path(tempfile.gettempdir()) / "caravan-base-image.lock"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _debootstrap(recipe: Recipe, target: Path, progress: Progress) -> None:
    tool = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if tool is None:
        raise BaseImageError(
            "debootstrap is not installed", fix="apt-get install debootstrap (or give a registry's base)"
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            "debootstrap needs root to lay out a Debian tree",
            fix="run `invoke images.base` as root, or build with --base-image python:3.11-slim@sha256:...",
        )
    progress(f"debootstrap {recipe.suite} ({recipe.variant}) from {recipe.mirror}")
    done = subprocess.run(
        [tool, f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
         recipe.suite, str(target), recipe.mirror],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["failed"]
        raise BaseImageError(
            f"debootstrap failed: {lines[-1]}", fix=f"check that {recipe.mirror} can be reached"
        )


def _trim(recipe: Recipe, root: Path) -> None:
    for relative in recipe.trim:
        path = root / relative
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif path.exists():
            path.unlink()


def _import(recipe: Recipe, root: Path) -> None:
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
        f"LABEL org.opencontainers.image.title=caravan-base "
        f"org.opencontainers.image.description=Debian-{recipe.suite}-with-Python-3.11 "
        f"org.caravan.base.recipe={recipe.digest}",
    ]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    command = [docker.docker_bin(), "import", *(a for c in changes for a in ("--change", c)), "-", recipe.tag]
    imported = subprocess.run(command, stdin=tar.stdout, capture_output=True, text=True, check=False)
    assert tar.stdout is not None
    tar.stdout.close()
    tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
    if tar.wait() != 0:
        raise BaseImageError(f"packing the Debian tree failed: {tar_err.strip()[-200:]}")
    if imported.returncode != 0:
        raise BaseImageError(f"docker import failed: {imported.stderr.strip()[-200:]}")


def ensure_base_image(
    progress: Progress = _silent, *, recipe: Recipe | None = None, rebuild: bool = False
) -> str:
    """The tag of the Debian 12 + Python 3.11 base image, built unless one with the same recipe
    exists (``rebuild`` builds it anyway). Raises BaseImageError / DockerError with the fix."""
    recipe = recipe or default_recipe()
    docker.ensure_engine()
    if not rebuild and docker.image_exists(recipe.tag):
        return recipe.tag
    with _build_lock():
        if not rebuild and docker.image_exists(recipe.tag):  # built meanwhile by another process
            return recipe.tag
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="caravan-base-", dir="/var/tmp"))
        try:
            rootfs = work / "rootfs"
            _debootstrap(recipe, rootfs, progress)
            _trim(recipe, rootfs)
            progress(f"importing {recipe.tag}")
            _import(recipe, rootfs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        progress(f"built {recipe.tag} in {time.monotonic() - started:.0f}s")
    return recipe.tag


__all__ = ["BaseImageError", "DockerError", "Recipe", "default_recipe", "ensure_base_image"]
