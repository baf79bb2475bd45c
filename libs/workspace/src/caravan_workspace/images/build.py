"""Building the image of every deployable (the gateway and each service) from its Dockerfile.

Each image is tagged ``caravan/<name>:<version>-<git sha>`` and labelled with the OCI version,
revision and source, plus ``org.caravan.inputs``: a digest of everything the build reads (the
files of its folder, the Dockerfile, the base image, the build arguments, the CA bundle, the
caravan-commons versions the workspace index offers — not its URL, whose port differs between
workspaces). A build whose tag already carries the same inputs digest is skipped, so
``invoke images`` with nothing changed does nothing.

The build context is staged, not the repository root: the legacy builder (no BuildKit) reads no
per-Dockerfile ignore file, so the context holds exactly the deployable's tracked files, the
workspace pyproject.toml and, when given, the CA bundle as ``build-ca.pem`` (named by the
``CA_BUNDLE`` build argument and read by the build stage only). The build uses the host network:
the workspace index listens on the host's loopback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from caravan_workspace.images import docker
from caravan_workspace.images.base import ensure_base_image
from caravan_workspace.images.docker import DockerError
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.services import load_services

REPOSITORY = "caravan"
#: The official base for users with a registry, pinned by digest (the Dockerfiles' default).
PYTHON_SLIM = "python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7"
BASE_ENV = "CARAVAN_BASE_IMAGE"  # an image reference, or "debian" for `invoke images.base`'s
CA_ENV = "CARAVAN_BUILD_CA_BUNDLE"  # a PEM file the build stage trusts (see ca_bundle)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SOURCE_ENV = "CARAVAN_SOURCE_URL"
DEFAULT_SOURCE_URL = "https://github.com/caravan/caravan"
CA_NAME = "build-ca.pem"
INPUTS_LABEL = "org.caravan.inputs"
GOAL_BYTES = 150 * 1000 * 1000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Deployable:
    name: str  # gateway, svc-a, ...
    folder: str  # its folder, relative to the workspace root
    package: str  # the module `python -m` runs
    ready_path: str

    @property
    def dockerfile(self) -> str:
        return f"{self.folder}/Dockerfile"


@dataclass(frozen=True)
class BuildSettings:
    base_image: str
    index_url: str
    uv_version: str
    revision: str
    source_url: str
    commons_versions: tuple[str, ...]
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class BuiltImage:
    deployable: Deployable
    tag: str
    built: bool  # False: the image with the same inputs existed
    seconds: float
    size: int
    labels: dict[str, str] = field(default_factory=dict)


class ImageBuildError(Exception):
    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def _silent(message: str) -> None:
    return None


# ---------------------------------------------------------------------------- what to build


def deployables(root: Path) -> list[Deployable]:
    """The gateway and every declared service, in that order."""
    found = [Deployable("gateway", "shared/gateway", "caravan_gateway", "/health/ready")]
    for service in load_services(root).values():
        found.append(
            Deployable(service.name, service.folder.relative_to(root).as_posix(), service.package,
                       service.health_ready)
        )  # fmt: skip
    return found


def project_version(root: Path, deployable: Deployable) -> str:
    project = tomllib.loads((root / deployable.folder / "pyproject.toml").read_text(encoding="utf-8"))
    return str(project.get("project", {}).get("version", "0.0.0"))


def git_revision(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ImageBuildError("the workspace is not a git checkout: images are tagged by revision")
    return done.stdout.strip()


def image_tag(root: Path, deployable: Deployable, revision: str) -> str:
    return f"{REPOSITORY}/{deployable.name}:{project_version(root, deployable)}-{revision[:12]}"


def tracked_files(root: Path, folder: str) -> list[str]:
    """The folder's files git knows or would add (tracked, plus untracked ones not ignored)."""
    command = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    done = subprocess.run([*command, "--", folder], capture_output=True, check=False)
    if done.returncode != 0:
        raise ImageBuildError(f"git ls-files {folder} failed")
    names = sorted({n for n in done.stdout.decode().split("\0") if n})
    return [n for n in names if (root / n).is_file()]


def inputs_digest(root: Path, deployable: Deployable, settings: BuildSettings, base_id: str) -> str:
    digest = hashlib.sha256()
    for name in [*tracked_files(root, deployable.folder), "pyproject.toml"]:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    # Not the index's URL (its port differs between workspaces): what it offers is what counts.
    for part in (base_id, settings.uv_version, settings.revision, settings.source_url,
                 ",".join(settings.commons_versions)):  # fmt: skip
        digest.update(part.encode() + b"\0")
    if settings.ca_bundle is not None:
        digest.update(settings.ca_bundle.read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------- settings


def choose_base_image(progress: Progress = _silent) -> str:
    """``$CARAVAN_BASE_IMAGE`` when set ("debian": the Debian base); else the pinned
    python:3.11-slim when the engine has it or can pull it; else the Debian base, built once."""
    wanted = os.environ.get(BASE_ENV, "").strip()
    if wanted and wanted != "debian":
        return wanted
    if not wanted:
        if docker.image_exists(PYTHON_SLIM):
            return PYTHON_SLIM
        if docker.run(["pull", "--quiet", PYTHON_SLIM], check=False, timeout=300).returncode == 0:
            return PYTHON_SLIM
        progress("no registry answers: the images use the Debian base (`invoke images.base`)")
    return ensure_base_image(progress)


def ca_bundle() -> Path | None:
    """The CA bundle the build stage trusts: ``$CARAVAN_BUILD_CA_BUNDLE`` ("none": no bundle),
    else ``$SSL_CERT_FILE``, else the host's bundle (Debian's), so that a build behind a proxy
    that re-signs HTTPS trusts what the host trusts. The final image never holds it."""
    named = os.environ.get(CA_ENV) or os.environ.get("SSL_CERT_FILE")
    if named == "none" or (not named and not HOST_CA_BUNDLE.is_file()):
        return None
    if not named:
        return HOST_CA_BUNDLE
    path = Path(named)
    if not path.is_file():
        raise ImageBuildError(f"the CA bundle {named} does not exist", fix=f"unset {CA_ENV} or fix the path")
    return path


def build_settings(
    ctx: Context, progress: Progress = _silent, *, base_image: str | None = None
) -> BuildSettings:
    """Everything a build needs: the base image, the workspace index (started if needed) and
    the caravan-commons versions it offers, uv's version, the git revision, the CA bundle."""
    state = index.ensure_index(ctx)
    uv_version = subprocess.run(
        [index.uv_bin(), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    return BuildSettings(
        base_image=base_image or choose_base_image(progress),
        index_url=state.url,
        uv_version=uv_version,
        revision=git_revision(ctx.root),
        source_url=os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE_URL,
        commons_versions=tuple(sorted(index.published_versions(state.url, "caravan-commons"))),
        ca_bundle=ca_bundle(),
    )


# ---------------------------------------------------------------------------- building


def stage_context(root: Path, deployable: Deployable, settings: BuildSettings, target: Path) -> None:
    for name in [*tracked_files(root, deployable.folder), "pyproject.toml"]:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)
    if settings.ca_bundle is not None:
        shutil.copyfile(settings.ca_bundle, target / CA_NAME)


def build_args(root: Path, deployable: Deployable, settings: BuildSettings, inputs: str) -> list[str]:
    values = {
        "BASE_IMAGE": settings.base_image,
        "UV_VERSION": settings.uv_version,
        "CA_BUNDLE": CA_NAME if settings.ca_bundle is not None else "",
        "SOURCE": deployable.folder,
        "WORKSPACE_INDEX_URL": settings.index_url,
        "NAME": deployable.name,
        "VERSION": project_version(root, deployable),
        "REVISION": settings.revision,
        "SOURCE_URL": settings.source_url,
        "READY_PATH": deployable.ready_path,
    }
    args = [a for key, value in values.items() for a in ("--build-arg", f"{key}={value}")]
    return [*args, "--label", f"{INPUTS_LABEL}={inputs}"]


def build_image(
    root: Path, deployable: Deployable, settings: BuildSettings, *, force: bool = False
) -> BuiltImage:
    """Build one image unless its tag already carries the same inputs digest."""
    started = time.monotonic()
    tag = image_tag(root, deployable, settings.revision)
    base_id = str((docker.inspect("image", settings.base_image) or {}).get("Id", settings.base_image))
    inputs = inputs_digest(root, deployable, settings, base_id)
    if not force and docker.image_labels(tag).get(INPUTS_LABEL) == inputs:
        return BuiltImage(deployable, tag, False, time.monotonic() - started, docker.image_size(tag),
                          docker.image_labels(tag))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"caravan-build-{deployable.name}-") as staging:
        context = Path(staging)
        stage_context(root, deployable, settings, context)
        command = ["build", "--quiet", "--network", "host", "--file", deployable.dockerfile, "--tag", tag,
                   *build_args(root, deployable, settings, inputs), str(context)]  # fmt: skip
        done = docker.run(command, check=False, timeout=1800)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).strip().splitlines() if "DEPRECATED" not in ln]
        raise ImageBuildError(
            f"building {tag} failed: {lines[-1] if lines else 'docker build failed'}",
            fix=f"see the log: docker build --network host -f {deployable.dockerfile} .",
        )
    return BuiltImage(deployable, tag, True, time.monotonic() - started, docker.image_size(tag),
                      docker.image_labels(tag))  # fmt: skip


def build_all(
    ctx: Context,
    names: Iterable[str] = (),
    *,
    jobs: int = 2,
    force: bool = False,
    base_image: str | None = None,
) -> list[BuiltImage]:
    """Build the image of every deployable (or those named), ``jobs`` at a time."""
    try:
        docker.ensure_engine()
    except DockerError as exc:
        raise ImageBuildError(str(exc), fix=exc.fix) from exc
    every = deployables(ctx.root)
    wanted = list(names)
    unknown = sorted(set(wanted) - {d.name for d in every})
    if unknown:
        known = ", ".join(d.name for d in every)
        raise ImageBuildError(f"no deployable named {unknown[0]!r} (known: {known})")
    chosen = [d for d in every if not wanted or d.name in wanted]
    settings = build_settings(ctx, ctx.progress, base_image=base_image)
    ctx.progress(f"base image {settings.base_image}; caravan-commons from {settings.index_url}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda d: build_image(ctx.root, d, settings, force=force), chosen))
