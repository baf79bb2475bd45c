"""What an image holds, read from inside it: this file is run by the image's own interpreter
(``docker run --rm --network none --entrypoint python IMAGE -c <this source>``, see
:mod:`caravan_workspace.images.sbom`). Standard library only; it reads, never writes, and prints one
JSON document:

- ``os``: ``/etc/os-release`` (``ID``, ``VERSION_ID``, ``PRETTY_NAME``, ...);
- ``debian``: every package dpkg records as installed (``/var/lib/dpkg/status``), with the Python
  distribution folders it owns (``/var/lib/dpkg/info/*.list``);
- ``python``: the interpreter that ran (executable, version, ``sys.path``);
- ``distributions``: every Python distribution in the image — each ``*.dist-info`` / ``*.egg-info``
  in the interpreter's ``sys.path`` and in every ``site-packages`` / ``dist-packages`` folder of the
  file system (a virtualenv, the system interpreter's, Debian's), each read with importlib.metadata.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata

SITE_FOLDERS = ("site-packages", "dist-packages")
METADATA_SUFFIXES = (".dist-info", ".egg-info")
#: Not the image's files (kernel and engine mounts), or nothing that holds installed packages.
SKIP = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache", "/var/log")
DPKG = "/var/lib/dpkg"


def read_os_release() -> dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.isfile(path):
            found = {}
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    key, sep, value = line.strip().partition("=")
                    if sep and not key.startswith("#"):
                        found[key] = value.strip().strip("\"'")
            return found
    return {}


def read_paragraphs(text: str) -> list[dict[str, str]]:
    """Debian control paragraphs (RFC 822 style): fields, continuation lines, blank-line breaks."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, ""
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def owned_python_folders() -> dict[str, str]:
    """Each Python distribution folder a Debian package installed → that package's name."""
    owners: dict[str, str] = {}
    info = os.path.join(DPKG, "info")
    if not os.path.isdir(info):
        return owners
    for name in sorted(os.listdir(info)):
        if not name.endswith(".list"):
            continue
        package = name[: -len(".list")].split(":")[0]
        with open(os.path.join(info, name), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                path = line.strip()
                if path.endswith(METADATA_SUFFIXES):
                    owners[os.path.realpath(path)] = package
    return owners


def read_debian() -> list[dict[str, str]]:
    status = os.path.join(DPKG, "status")
    if not os.path.isfile(status):
        return []
    with open(status, encoding="utf-8", errors="replace") as fh:
        paragraphs = read_paragraphs(fh.read())
    keep = ("Package", "Version", "Architecture", "Source", "Homepage")
    return [
        {k: p[k] for k in keep if p.get(k)}
        for p in paragraphs
        if p.get("Status", "").endswith(" installed") and p.get("Package") and p.get("Version")
    ]


def site_folders(top: str = "/") -> list[str]:
    """Every folder named site-packages or dist-packages (not descending into them)."""
    found = []
    for folder, children, _files in os.walk(top):
        if folder in SKIP:
            children[:] = []
            continue
        found += [os.path.join(folder, c) for c in children if c in SITE_FOLDERS]
        children[:] = [c for c in children if c not in SITE_FOLDERS and not c.endswith(METADATA_SUFFIXES)]
    return found


def field(meta: metadata.PackageMetadata, key: str) -> str | None:
    return meta[key] if key in meta else None  # noqa: SIM401 (the PackageMetadata protocol has no get)


def licence_of(meta: metadata.PackageMetadata) -> dict[str, str | list[str]]:
    found: dict[str, str | list[str]] = {}
    expression = field(meta, "License-Expression")
    if expression:
        found["expression"] = expression.strip()
    text = field(meta, "License")
    if text and text.strip() and text.strip().upper() not in ("UNKNOWN", "NONE"):
        found["text"] = text.strip()
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    if classifiers:
        found["classifiers"] = classifiers
    return found


def read_distributions(folders: list[str], owners: dict[str, str]) -> list[dict[str, object]]:
    seen: set[str] = set()
    found: list[dict[str, object]] = []
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            path = os.path.realpath(os.path.join(folder, entry))
            if not entry.endswith(METADATA_SUFFIXES) or path in seen:
                continue
            seen.add(path)
            meta = metadata.Distribution.at(path).metadata
            if not meta or not field(meta, "Name") or not field(meta, "Version"):
                continue
            record: dict[str, object] = {
                "name": meta["Name"],
                "version": meta["Version"],
                "path": path,
                "licence": licence_of(meta),
            }
            summary = field(meta, "Summary")
            if summary:
                record["summary"] = summary.strip()
            if path in owners:
                record["debian_package"] = owners[path]
            found.append(record)
    return found


def main() -> None:
    owners = owned_python_folders()
    folders = [p for p in sys.path if p and os.path.isdir(p)] + site_folders()
    document = {
        "os": read_os_release(),
        "debian": read_debian(),
        "python": {
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "version": platform.python_version(),
            "path": sys.path,
        },
        "distributions": read_distributions(folders, owners),
    }
    json.dump(document, sys.stdout)


if __name__ == "__main__":
    main()
