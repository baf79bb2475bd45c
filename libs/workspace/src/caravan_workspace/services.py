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

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class DeclarationError(Exception):
    pass


@dataclass(frozen=True)
class Scaling:
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


_KEYS = {"name", "title", "package", "lane", "routes", "health", "depends_on", "scaling"}


def load_service(folder: Path) -> Service:
    path = folder / "service.toml"
    where = f"{folder.name}/service.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeclarationError(f"{where}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{where}: not valid TOML: {exc}") from exc
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise DeclarationError(f"{where}: unknown key {extra[0]!r}")
    missing = sorted(_KEYS - set(raw))
    if missing:
        raise DeclarationError(f"{where}: missing key {missing[0]!r}")
    name = raw["name"]
    if not isinstance(name, str) or not NAME_RE.match(name) or name != folder.name:
        raise DeclarationError(
            f"{where}: name {name!r} must be the folder name, lower-case words joined by '-'"
        )
    package = raw["package"]
    if not isinstance(package, str) or not package.isidentifier():
        raise DeclarationError(f"{where}: package {package!r} is not a Python identifier")
    routes = raw["routes"]
    if (
        not isinstance(routes, list)
        or not routes
        or not all(isinstance(r, str) and r.startswith("/") for r in routes)
    ):
        raise DeclarationError(f"{where}: routes must be a non-empty list of paths starting with '/'")
    health = raw["health"]
    if not isinstance(health, dict) or set(health) != {"live", "ready"}:
        raise DeclarationError(f"{where}: health must have exactly 'live' and 'ready' paths")
    scaling = raw["scaling"]
    try:
        bounds = Scaling(
            min=int(scaling["min"]), max=int(scaling["max"]), instances=int(scaling["instances"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeclarationError(f"{where}: scaling needs integer min, max and instances") from exc
    if not 1 <= bounds.min <= bounds.instances <= bounds.max:
        raise DeclarationError(f"{where}: scaling must satisfy 1 <= min <= instances <= max")
    deps = raw["depends_on"]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise DeclarationError(f"{where}: depends_on must list service names")
    return Service(
        name=name,
        title=str(raw["title"]),
        package=package,
        lane=str(raw["lane"]),
        routes=tuple(routes),
        health_live=health["live"],
        health_ready=health["ready"],
        depends_on=tuple(deps),
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
