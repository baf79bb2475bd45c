"""`invoke images.sbom` on a real Docker engine (no fake): each SBOM lists exactly what the image
holds — compared with what dpkg and the image's interpreter say inside a container of it — is valid
CycloneDX 1.6, and names the image; bad input is one line (on the command line: and a non-zero
exit) and nothing written.

One small image is built from the project's base image (a virtualenv, as the deployables have);
the deployable's image is the one `invoke images` builds (the docker session has built it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from caravan_workspace.images import docker
from caravan_workspace.images.build import choose_base_image
from caravan_workspace.images.sbom import ISOLATION, SbomError, write_image_sboms

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"caravan-sbom-test-{os.getpid()}"
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted([d.metadata['Name'], d.version, str(d._path)] for d in m.distributions())))"
)


def build(tag: str, dockerfile: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as folder:
        (Path(folder) / "Dockerfile").write_text(dockerfile)
        (Path(folder) / "hello").write_text("hello\n")
        docker.run(["build", "--quiet", "--tag", tag, folder], timeout=900)


@pytest.fixture(scope="module")
def small_image() -> Iterator[str]:
    """The project's base image with a virtualenv at /opt/venv whose python is the entrypoint's."""
    tag = f"{PREFIX}/venv:1"
    build(tag, f"FROM {choose_base_image()}\nRUN python3 -m venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH\n"
               "LABEL org.opencontainers.image.title=sbom-test\n"
               'ENTRYPOINT ["python", "-c", "print(1)"]\n')  # fmt: skip
    yield tag
    docker.run(["image", "rm", "--force", tag], check=False)


@pytest.fixture(scope="module")
def no_python_image() -> Iterator[str]:
    tag = f"{PREFIX}/scratch:1"
    build(tag, "FROM scratch\nCOPY hello /hello\n")
    yield tag
    docker.run(["image", "rm", "--force", tag], check=False)


def sbom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "images.sbom", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def inside(image: str, *command: str) -> str:
    return docker.run(["run", *ISOLATION, "--entrypoint", command[0], image, *command[1:]]).stdout


def valid(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True) is None
    document: dict[str, Any] = json.loads(text)
    return document


def props(item: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in item.get("properties", []):
        found.setdefault(p["name"], []).append(p["value"])
    return found


def test_the_sbom_lists_what_dpkg_and_the_interpreter_find(small_image: str, tmp_path: Path) -> None:
    done = sbom("--image", small_image, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    document = valid(tmp_path / f"{PREFIX}-venv-1.cdx.json")

    image = document["metadata"]["component"]
    image_id = docker.run(["image", "inspect", "--format", "{{.Id}}", small_image]).stdout.strip()
    assert (image["type"], image["name"], image["version"], image["bom-ref"]) == (
        "container", f"{PREFIX}/venv", "1", image_id)  # fmt: skip
    assert image["hashes"] == [{"alg": "SHA-256", "content": image_id.removeprefix("sha256:")}]
    assert props(image)["org.opencontainers.image.title"] == ["sbom-test"]
    assert props(image)["caravan:image:tag"] == [small_image]

    components = document["components"]
    dpkg = inside(small_image, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n").split("\n")
    debs = {f"{c['name']} {c['version']}" for c in components if c.get("purl", "").startswith("pkg:deb/")}
    assert debs == {line for line in dpkg if line} and len(debs) > 50
    libc = next(c for c in components if c["name"] == "libc6")
    assert libc["purl"].startswith("pkg:deb/debian/libc6@") and "distro=debian-12" in libc["purl"]

    listed = json.loads(inside(small_image, "python", "-c", LIST_DISTRIBUTIONS))
    in_venv = {(name, version, path) for name, version, path in listed if path.startswith("/opt/venv/")}
    python = {(c["name"], c["version"], props(c)["caravan:image:path"][0])
              for c in components if c.get("purl", "").startswith("pkg:pypi/")}  # fmt: skip
    assert in_venv and in_venv <= python
    pip_version = inside(small_image, "python", "-m", "pip", "--version").split()[1]
    pip = next(c for c in components if c["name"] == "pip" and "/opt/venv/" in c["bom-ref"])
    assert pip["purl"] == f"pkg:pypi/pip@{pip_version}"

    system = next(c for c in components if c["type"] == "operating-system")
    assert (system["name"], system["version"]) == ("debian", "12")
    held = next(d for d in document["dependencies"] if d["ref"] == image_id)["dependsOn"]
    assert system["bom-ref"] in held and pip["bom-ref"] in held
    by_os = next(d for d in document["dependencies"] if d["ref"] == system["bom-ref"])["dependsOn"]
    assert libc["bom-ref"] in by_os


def test_a_deployable_image_lists_its_own_packages_without_a_pypi_url(tmp_path: Path) -> None:
    done = sbom("--name", "gateway", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.cdx.json"]
    document = valid(tmp_path / "gateway.cdx.json")
    assert document["metadata"]["component"]["name"] == "caravan/gateway"
    components = {c["name"]: c for c in document["components"]}
    for own in ("caravan-gateway", "caravan-commons"):
        assert "purl" not in components[own]
        assert props(components[own])["caravan:image:origin"] == ["workspace package index"]
        assert props(components[own])["caravan:image:path"][0].startswith("/opt/venv/")
    assert components["litestar"]["purl"].startswith("pkg:pypi/litestar@")


def test_an_image_that_does_not_exist_is_one_line_and_nothing_is_written(
    small_image: str, tmp_path: Path
) -> None:
    missing = f"{PREFIX}/missing:0"
    out = tmp_path / "fresh"
    done = sbom("--image", missing, "--out", str(out))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: no image {missing} in the Docker engine — fix: build it (`invoke images`) or pull it, "
        "then ask again"
    )
    assert not out.exists()
    # With a readable image beside it: still nothing written, and an earlier SBOM stays as it was.
    write_image_sboms({"small": small_image}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SbomError, match="no image"):
        write_image_sboms({"small": small_image, "missing": missing}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_image_without_python_is_refused_and_nothing_written(no_python_image: str, tmp_path: Path) -> None:
    with pytest.raises(SbomError) as refused:
        write_image_sboms({"scratch": no_python_image}, tmp_path / "out")
    message = str(refused.value)
    assert message.startswith(f"reading {no_python_image} with its interpreter python3 failed: docker: ")
    assert "\n" not in message and "executable file not found" in message
    assert refused.value.fix == "the image must hold a Python interpreter (its entrypoint's, or python3)"
    assert not (tmp_path / "out").exists()
