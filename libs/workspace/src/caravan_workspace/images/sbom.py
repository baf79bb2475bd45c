"""A CycloneDX SBOM per image, describing what is really inside the built image.

The image is read from inside: one container of it (``--network none``, read-only, removed at
once) runs :mod:`caravan_workspace.images.sbom_probe` with the image's own interpreter — the one
its entrypoint runs — which lists every Python distribution in the image (its virtualenv, the system
interpreter's, Debian's) and every Debian package dpkg records as installed. The document
(:mod:`caravan_workspace.images.sbom_document`) names the image by id, tags and OCI labels and is
checked against the CycloneDX 1.6 JSON schema. Files are written only when every image asked for
was read: each to a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from caravan_workspace.images import docker, sbom_probe
from caravan_workspace.images.docker import DockerError
from caravan_workspace.images.sbom_document import Image, SbomError, image_bom, render

SUFFIX = ".cdx.json"
PROBE_TIMEOUT_S = 300
#: How the probe's container runs: removed at once, no network, a read-only root.
ISOLATION = ("--rm", "--network", "none", "--read-only")
#: docker run's exit codes when the command cannot be found or run in the image.
NOT_RUNNABLE = (126, 127)


# ---------------------------------------------------------------------------- reading the image


def inspect_image(reference: str) -> Image:
    info = docker.inspect("image", reference)
    if info is None:
        raise SbomError(
            f"no image {reference} in the Docker engine",
            fix="build it (`invoke images`) or pull it, then ask again",
        )
    config = info.get("Config") or {}
    return Image(
        reference=reference,
        id=str(info["Id"]),
        tags=tuple(info.get("RepoTags") or ()),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        labels=dict(config.get("Labels") or {}),
        created=str(info.get("Created", "")),
        platform=f"{info.get('Os', 'linux')}/{info.get('Architecture', 'unknown')}",
    )


def interpreter(image: Image) -> str:
    """The interpreter the image's entrypoint runs (``python`` from its PATH), else ``python3``."""
    first = image.entrypoint[0] if image.entrypoint else ""
    return first if PurePosixPath(first).name.startswith("python") else "python3"


def probe(image: Image) -> dict[str, Any]:
    """Run the probe in a container of the image: no network, read-only, removed at once."""
    source = Path(sbom_probe.__file__).read_text(encoding="utf-8")
    python = interpreter(image)
    command = ["run", *ISOLATION, "--entrypoint", python, image.id, "-c", source]
    try:
        done = docker.run(command, check=False, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SbomError(f"reading {image.reference} took over {PROBE_TIMEOUT_S}s") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        # docker's own refusal ("docker: Error response ...") comes before its "Run 'docker run --help'".
        last = next((ln for ln in lines if ln.startswith("docker: ")), lines[-1])
        raise SbomError(
            f"reading {image.reference} with its interpreter {python} failed: {last}",
            fix="the image must hold a Python interpreter (its entrypoint's, or python3)"
            if done.returncode in NOT_RUNNABLE
            else None,
        )
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise SbomError(f"reading {image.reference}: the probe printed no JSON ({exc})") from exc
    return found


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ImageSbom:
    name: str  # the file's name without the suffix
    image: Image
    python: int  # Python distributions
    debian: int  # Debian packages
    text: str


def read_image(name: str, reference: str) -> ImageSbom:
    try:
        image = inspect_image(reference)
        found = probe(image)
    except DockerError as exc:
        raise SbomError(str(exc), fix=exc.fix) from exc
    text = render(image_bom(image, found))
    return ImageSbom(name, image, len(found.get("distributions", [])), len(found.get("debian", [])), text)


def file_name(reference: str) -> str:
    """A file name for an image reference: ``caravan/gateway:0.1.0`` → ``caravan-gateway-0.1.0``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-.") or "image"


def write_image_sboms(
    images: Mapping[str, str], out_dir: Path, *, jobs: int = 2
) -> list[tuple[ImageSbom, Path]]:
    """The SBOM of each image (file name → image reference) in ``out_dir/<name>.cdx.json``, read
    ``jobs`` at a time. Every image is read first; nothing is written unless all were, and each
    file appears whole."""
    if not images:
        raise SbomError("no image to describe")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        documents = list(pool.map(lambda item: read_image(*item), images.items()))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for document in documents:
        target = out_dir / f"{document.name}{SUFFIX}"
        handle, temporary = tempfile.mkstemp(prefix=f".{document.name}-", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as fh:
                fh.write(document.text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append((document, target))
    return written


__all__ = ["ISOLATION", "Image", "ImageSbom", "SbomError", "file_name", "read_image", "write_image_sboms"]
