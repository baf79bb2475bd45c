"""The image SBOM without an engine: the probe's readers on a made-up file system (dpkg's status
and file lists, site folders, distribution metadata), and the CycloneDX document built from what a
probe found — valid against the 1.6 schema, with the right package URLs and dependencies. The real
images are read in tests/docker/test_image_sbom.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from caravan_workspace.images import sbom_probe
from caravan_workspace.images.sbom import file_name, interpreter
from caravan_workspace.images.sbom_document import Image, SbomError, image_bom, render

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u14
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: python3-pip
Status: install ok installed
Architecture: all
Version: 23.0.1+dfsg-1

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""

IMAGE = Image(
    reference="caravan/svc-a:0.1.0-abc",
    id="sha256:" + "a" * 64,
    tags=("caravan/svc-a:0.1.0-abc",),
    entrypoint=("python", "-m", "caravan_svc_a"),
    labels={"org.opencontainers.image.revision": "abc"},
    created="2026-01-01T00:00:00Z",
    platform="linux/amd64",
)


def write_distribution(folder: Path, name: str, version: str, *headers: str) -> Path:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}",
                                              *headers]) + "\n")  # fmt: skip
    return info


VENV = "/opt/venv/lib"
DEBIAN_SITE = "/usr/lib/python3/dist-packages"


def found_in_an_image(tmp_path: Path) -> dict[str, Any]:
    return {
        "os": {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
        "debian": [
            {"Package": "libc6", "Version": "2.36-9+deb12u14", "Architecture": "amd64", "Source": "glibc"},
            {"Package": "python3-pip", "Version": "23.0.1+dfsg-1", "Architecture": "all"},
        ],
        "python": {"implementation": "CPython", "executable": "/opt/venv/bin/python", "version": "3.11.2"},
        "distributions": [
            {"name": "Litestar", "version": "2.25.0", "path": f"{VENV}/litestar-2.25.0.dist-info",
             "licence": {"expression": "MIT"}, "summary": "ASGI"},
            {"name": "caravan-commons", "version": "0.3.0", "path": f"{VENV}/caravan_commons-0.3.0.dist-info",
             "licence": {"text": "MIT"}},
            {"name": "pip", "version": "23.0.1", "path": f"{DEBIAN_SITE}/pip-23.0.1.dist-info",
             "licence": {"text": "long\ntext", "classifiers": ["MIT License"]},
             "debian_package": "python3-pip"},
            {"name": "pip", "version": "24.0", "path": f"{VENV}/pip-24.0.dist-info", "licence": {}},
        ],
    }  # fmt: skip


def test_the_probe_reads_installed_debian_packages_and_which_own_python_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "info").mkdir()
    (tmp_path / "status").write_text(STATUS)
    (tmp_path / "info" / "python3-pip.list").write_text(
        "/usr/lib/python3/dist-packages/pip\n/usr/lib/python3/dist-packages/pip-23.0.1.dist-info\n"
    )
    (tmp_path / "info" / "libc6:amd64.list").write_text("/usr/lib/x86_64-linux-gnu/libc.so.6\n")
    monkeypatch.setattr(sbom_probe, "DPKG", str(tmp_path))
    assert sbom_probe.read_debian() == [
        {"Package": "libc6", "Version": "2.36-9+deb12u14", "Architecture": "amd64", "Source": "glibc"},
        {"Package": "python3-pip", "Version": "23.0.1+dfsg-1", "Architecture": "all"},
    ]
    assert sbom_probe.owned_python_folders() == {
        "/usr/lib/python3/dist-packages/pip-23.0.1.dist-info": "python3-pip"
    }
    description = sbom_probe.read_paragraphs(STATUS)[0]["Description"]
    assert description.endswith("on\nthe system.")


def test_no_dpkg_means_no_debian_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom_probe, "DPKG", str(tmp_path / "absent"))
    assert sbom_probe.read_debian() == [] and sbom_probe.owned_python_folders() == {}


def test_the_probe_finds_every_site_folder_and_reads_each_distribution_once(tmp_path: Path) -> None:
    venv = tmp_path / "opt" / "venv" / "lib" / "python3.11" / "site-packages"
    system = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    write_distribution(venv, "Litestar", "2.25.0", "License-Expression: MIT", "Summary: ASGI")
    bsd = "Classifier: License :: OSI Approved :: BSD License"
    write_distribution(venv, "odd", "1.0", "License: UNKNOWN", bsd)
    pip = write_distribution(system, "pip", "23.0.1", "License: MIT")
    (venv / "nested" / "site-packages").mkdir(parents=True)  # inside a site folder: not searched
    (tmp_path / "opt" / "venv" / "lib64").symlink_to(tmp_path / "opt" / "venv" / "lib")
    folders = sbom_probe.site_folders(str(tmp_path))
    assert sorted(folders) == sorted([str(venv), str(system)])
    linked = str(tmp_path / "opt" / "venv" / "lib64" / "python3.11" / "site-packages")
    found = sbom_probe.read_distributions([*folders, linked], {str(pip.resolve()): "python3-pip"})
    assert sorted((d["name"], d["version"]) for d in found) == [("Litestar", "2.25.0"), ("odd", "1.0"),
                                                                 ("pip", "23.0.1")]  # fmt: skip
    by_name = {d["name"]: d for d in found}
    assert by_name["Litestar"]["licence"] == {"expression": "MIT"}
    assert by_name["Litestar"]["summary"] == "ASGI"
    assert by_name["odd"]["licence"] == {"classifiers": ["BSD License"]}
    assert by_name["pip"]["debian_package"] == "python3-pip"


def test_the_document_is_valid_cyclonedx_and_names_what_the_image_holds(tmp_path: Path) -> None:
    text = render(image_bom(IMAGE, found_in_an_image(tmp_path)))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True) is None
    document = json.loads(text)
    assert document["specVersion"] == "1.6"
    image = document["metadata"]["component"]
    assert (image["type"], image["name"], image["version"], image["bom-ref"]) == (
        "container", "caravan/svc-a", "0.1.0-abc", IMAGE.id)  # fmt: skip
    tools = {t["name"] for t in document["metadata"]["tools"]["components"]}
    assert {"caravan-workspace", "cyclonedx-python-lib"} <= tools

    by_ref = {c["bom-ref"]: c for c in document["components"]}
    libc = by_ref["pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"]
    assert libc["purl"] == libc["bom-ref"]
    litestar = by_ref["python:/opt/venv/lib/litestar-2.25.0.dist-info"]
    assert litestar["purl"] == "pkg:pypi/litestar@2.25.0"
    assert litestar["licenses"] == [{"license": {"id": "MIT"}}]
    commons = by_ref["python:/opt/venv/lib/caravan_commons-0.3.0.dist-info"]
    assert "purl" not in commons  # from the workspace index: PyPI's namesake is not it
    debian_pip = by_ref["python:/usr/lib/python3/dist-packages/pip-23.0.1.dist-info"]
    assert debian_pip["licenses"] == [{"license": {"name": "MIT License"}}]  # the text was no name
    assert {"name": "caravan:image:debian-package", "value": "python3-pip"} in debian_pip["properties"]
    assert by_ref["python:/opt/venv/lib/pip-24.0.dist-info"]["purl"] == "pkg:pypi/pip@24.0"
    assert by_ref["interpreter:/opt/venv/bin/python"]["name"] == "cpython"

    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert depends[IMAGE.id] == {"os:debian", "interpreter:/opt/venv/bin/python",
                                 *(r for r in by_ref if r.startswith("python:"))}  # fmt: skip
    assert depends["os:debian"] == {r for r in by_ref if r.startswith("pkg:deb/")}


def test_a_document_the_schema_refuses_is_never_rendered(tmp_path: Path) -> None:
    bad = Image(**{**IMAGE.__dict__, "id": "sha256:not-a-digest"})
    with pytest.raises(SbomError, match=r"fails the CycloneDX 1\.6 schema"):
        render(image_bom(bad, found_in_an_image(tmp_path)))


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [(("python", "-m", "x"), "python"), (("/usr/local/bin/python3.11",), "/usr/local/bin/python3.11"),
     (("sh", "-c", "x"), "python3"), ((), "python3")],
)  # fmt: skip
def test_the_interpreter_is_the_entrypoints(entrypoint: tuple[str, ...], expected: str) -> None:
    assert interpreter(Image(**{**IMAGE.__dict__, "entrypoint": entrypoint})) == expected


def test_an_image_reference_becomes_a_file_name() -> None:
    assert file_name("caravan/gateway:0.1.0-abc") == "caravan-gateway-0.1.0-abc"
    assert file_name("registry:5000/x@sha256:ab") == "registry-5000-x-sha256-ab"
