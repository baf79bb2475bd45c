"""Service declarations: the one place a service's name, routes, health paths, upstream
dependencies and scaling bounds are stated (``<service>/service.toml``). Everything else — the
local runtime, gateway routes, Nomad jobs, Kubernetes manifests, Prometheus targets — is derived
from these or checked against them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec

from caravan_workspace.declarations import Misfit, Table, convert

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class DeclarationError(Exception):
    pass


class Scaling(Table, frozen=True):
    min: int
    max: int
    instances: int


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    package: str
    lane: str
    routes: tuple[str, ...]
    health_live: str
    health_ready: str
    depends_on: tuple[str, ...]
    scaling: Scaling
    folder: Path


class _Health(Table, frozen=True):
    live: str
    ready: str


class _ServiceFile(Table, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=NAME_RE.pattern)]
    title: str
    package: str
    lane: str
    routes: Annotated[list[Annotated[str, msgspec.Meta(pattern="^/")]], msgspec.Meta(min_length=1)]
    health: _Health
    depends_on: list[str]
    scaling: Scaling


#: What a misfit of each key says (any other: the key has the wrong type).
_MISFITS = {
    "name": "name {value!r} must be the folder name, lower-case words joined by '-'",
    "package": "package {value!r} is not a Python identifier",
    "routes": "routes must be a non-empty list of paths starting with '/'",
    "health": "health must have exactly 'live' and 'ready' paths",
    "depends_on": "depends_on must list service names",
    "scaling": "scaling needs integer min, max and instances",
}


def _decode(raw: dict[str, object], where: str) -> _ServiceFile:
    try:
        return convert(raw, _ServiceFile)
    except Misfit as misfit:
        key = misfit.table[0] if misfit.table else misfit.key  # a key inside health or scaling: theirs
        if misfit.kind == "unknown" and not misfit.table:
            raise DeclarationError(f"{where}: unknown key {misfit.key!r}") from None
        if misfit.kind == "missing" and not misfit.table:
            raise DeclarationError(f"{where}: missing key {misfit.key!r}") from None
        if str(key) in _MISFITS:
            message = _MISFITS[str(key)].format(value=raw.get(str(key)))
            raise DeclarationError(f"{where}: {message}") from None
        raise DeclarationError(f"{where}: {misfit.wrong_type(raw)}") from None


def load_service(folder: Path) -> Service:
    path = folder / "service.toml"
    where = f"{folder.name}/service.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeclarationError(f"{where}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{where}: not valid TOML: {exc}") from exc
    declared = _decode(raw, where)
    if declared.name != folder.name:
        raise DeclarationError(f"{where}: {_MISFITS['name'].format(value=declared.name)}")
    if not declared.package.isidentifier():
        raise DeclarationError(f"{where}: {_MISFITS['package'].format(value=declared.package)}")
    bounds = declared.scaling
    if not 1 <= bounds.min <= bounds.instances <= bounds.max:
        raise DeclarationError(f"{where}: scaling must satisfy 1 <= min <= instances <= max")
    return Service(
        name=declared.name,
        title=declared.title,
        package=declared.package,
        lane=declared.lane,
        routes=tuple(declared.routes),
        health_live=declared.health.live,
        health_ready=declared.health.ready,
        depends_on=tuple(declared.depends_on),
        scaling=bounds,
        folder=folder,
    )


def load_services(root: Path) -> dict[str, Service]:
    """Every service of the workspace (folders holding a service.toml), validated together."""
    services = {}
    for path in sorted(root.glob("*/service.toml")):
        service = load_service(path.parent)
        services[service.name] = service
    for service in services.values():
        for dep in service.depends_on:
            if dep not in services:
                raise DeclarationError(f"{service.name}/service.toml: depends on unknown service {dep!r}")
    routes: dict[str, str] = {}
    for service in services.values():
        for route in service.routes:
            if route in routes:
                raise DeclarationError(
                    f"{service.name}/service.toml: route {route} already belongs to {routes[route]}"
                )
            routes[route] = service.name
    return services
