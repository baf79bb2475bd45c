"""The CycloneDX document of an image, built with the reference library (cyclonedx-python-lib)
from what :mod:`caravan_workspace.images.sbom_probe` found inside it, and checked against the
CycloneDX 1.6 JSON schema before anyone writes it (:mod:`caravan_workspace.images.sbom` reads the
images and writes the files):

- ``metadata.component``: the image (type ``container``), its id as a SHA-256 hash and bom-ref, its
  tags, platform, creation time and labels as properties;
- components: the operating system (``/etc/os-release``), each Debian package
  (``pkg:deb/debian/<name>@<version>?arch=...&distro=debian-12``), the Python interpreter and each
  Python distribution (``pkg:pypi/<name>@<version>``, with its folder in the image and, where dpkg
  installed it, the Debian package that owns it; the workspace's own ``caravan-*`` packages carry no
  PyPI package URL: they come from the workspace index, and PyPI's namesakes are not them);
- dependencies: the image holds the OS, the interpreter and the distributions; the OS its packages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.contrib.this.builders import this_component
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from caravan_workspace.supply_chain import OWN_PREFIX

PROPERTY = "caravan:image"  # the namespace of this document's own properties
#: A license field longer than this is the license's text, not its name.
LICENSE_NAME_MAX = 100


class SbomError(Exception):
    """An image's SBOM could not be made; the message is one line, ``fix`` says what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class Image:
    reference: str  # as asked for: a tag or an id
    id: str  # sha256:...
    tags: tuple[str, ...]
    entrypoint: tuple[str, ...]
    labels: Mapping[str, str]
    created: str
    platform: str


def _name_and_version(image: Image) -> tuple[str, str]:
    tag = image.reference if image.reference in image.tags or not image.tags else image.tags[0]
    repository, _, version = tag.partition("@")[0].rpartition(":")
    if not repository or "/" in version:  # no tag: "registry:5000/name" or an id
        return tag.partition("@")[0], image.id
    return repository, version


def _licenses(found: Mapping[str, Any]) -> list[License]:
    factory = LicenseFactory()
    text = str(found.get("expression") or found.get("text") or "")
    if text and "\n" not in text and len(text) <= LICENSE_NAME_MAX:
        return [factory.make_from_string(text)]
    return [DisjunctiveLicense(name=str(c)) for c in found.get("classifiers", [])]


def _python_component(dist: Mapping[str, Any]) -> Component:
    name = re.sub(r"[-_.]+", "-", str(dist["name"])).lower()
    properties = [Property(name=f"{PROPERTY}:path", value=str(dist["path"]))]
    own = name.startswith(OWN_PREFIX)  # published to the workspace index only: no PyPI package URL
    if own:
        properties.append(Property(name=f"{PROPERTY}:origin", value="workspace package index"))
    if dist.get("debian_package"):
        properties.append(Property(name=f"{PROPERTY}:debian-package", value=str(dist["debian_package"])))
    return Component(
        type=ComponentType.LIBRARY,
        name=str(dist["name"]),
        version=str(dist["version"]),
        description=dist.get("summary") or None,
        bom_ref=f"python:{dist['path']}",
        purl=None if own else PackageURL(type="pypi", name=name, version=str(dist["version"])),
        licenses=_licenses(dist.get("licence") or {}),
        properties=properties,
    )


def _debian_component(package: Mapping[str, str], os_release: Mapping[str, str]) -> Component:
    distro = os_release.get("ID", "debian")
    qualifiers = {"arch": package.get("Architecture", "")}
    if os_release.get("VERSION_ID"):
        qualifiers["distro"] = f"{distro}-{os_release['VERSION_ID']}"
    name, version = package["Package"], package["Version"]
    purl = PackageURL(type="deb", namespace=distro, name=name, version=version, qualifiers=qualifiers)
    properties = []
    if "Source" in package:
        properties.append(Property(name=f"{PROPERTY}:debian-source", value=package["Source"]))
    return Component(
        type=ComponentType.LIBRARY,
        name=name,
        version=version,
        bom_ref=purl.to_string(),
        purl=purl,
        properties=properties,
    )


def _tool() -> Component:
    return Component(
        type=ComponentType.APPLICATION,
        name="caravan-workspace",
        version=metadata.version("caravan-workspace"),
        description="invoke images.sbom (caravan_workspace.images.sbom)",
    )


def image_bom(image: Image, found: Mapping[str, Any]) -> Bom:
    """The CycloneDX document of an image from what the probe found in it."""
    name, version = _name_and_version(image)
    properties = [Property(name=f"{PROPERTY}:id", value=image.id),
                  Property(name=f"{PROPERTY}:platform", value=image.platform),
                  Property(name=f"{PROPERTY}:created", value=image.created),
                  *(Property(name=f"{PROPERTY}:tag", value=t) for t in image.tags),
                  *(Property(name=k, value=v) for k, v in sorted(image.labels.items()))]  # fmt: skip
    root = Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=version,
        bom_ref=image.id,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=image.id.removeprefix("sha256:"))],
        properties=properties,
    )
    bom = Bom(metadata=BomMetaData(component=root))
    bom.metadata.tools.components.update([this_component(), _tool()])
    os_release = found.get("os") or {}
    packages = [_debian_component(p, os_release) for p in found.get("debian", [])]
    held: list[Component] = []
    if os_release:
        system = Component(
            type=ComponentType.OPERATING_SYSTEM,
            name=os_release.get("ID", "linux"),
            version=os_release.get("VERSION_ID"),
            description=os_release.get("PRETTY_NAME"),
            bom_ref=f"os:{os_release.get('ID', 'linux')}",
        )
        bom.components.add(system)
        bom.register_dependency(system, packages)
        held.append(system)
    python = found.get("python") or {}
    if python:
        runtime = Component(
            type=ComponentType.APPLICATION,
            name=str(python.get("implementation") or "python").lower(),
            version=python.get("version"),
            bom_ref=f"interpreter:{python.get('executable')}",
            properties=[Property(name=f"{PROPERTY}:path", value=str(python.get("executable")))],
        )
        bom.components.add(runtime)
        held.append(runtime)
    distributions = [_python_component(d) for d in found.get("distributions", [])]
    bom.components.update([*packages, *distributions])
    bom.register_dependency(root, [*held, *distributions])
    return bom


def render(bom: Bom) -> str:
    """The document as CycloneDX 1.6 JSON, checked against the schema (SbomError when invalid)."""
    from cyclonedx.validation.json import JsonStrictValidator  # its format checkers take seconds to load

    text = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SbomError(f"the SBOM of {bom.metadata.component} fails the CycloneDX 1.6 schema: {error}")
    return text + "\n"
