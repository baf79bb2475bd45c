"""The route table: which service answers a path. Built from the services' declared route
prefixes (never a hand-kept list); the longest matching prefix wins, on whole path segments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class RouteError(ValueError):
    pass


@dataclass(frozen=True)
class Match:
    service: str
    prefix: str
    upstream_path: str  # the path the service sees: the prefix stripped, always starting with "/"


class RouteTable:
    def __init__(self, routes: Mapping[str, str]) -> None:
        """``routes`` maps a prefix such as ``/api/svc-a`` to the service name that owns it."""
        for prefix in routes:
            _check_prefix(prefix)
        # Longest first, so /api/x/admin can be carved out of /api/x.
        self._routes = sorted(routes.items(), key=lambda item: len(item[0]), reverse=True)

    @classmethod
    def from_declarations(cls, declared: Iterable[tuple[str, Iterable[str]]]) -> RouteTable:
        """From ``(service, [prefixes])`` pairs; a prefix claimed twice is an error."""
        routes: dict[str, str] = {}
        for service, prefixes in declared:
            for prefix in prefixes:
                if prefix in routes:
                    raise RouteError(f"route {prefix} is declared by both {routes[prefix]} and {service}")
                routes[prefix] = service
        return cls(routes)

    @property
    def prefixes(self) -> list[str]:
        return [prefix for prefix, _ in self._routes]

    @property
    def services(self) -> list[str]:
        return sorted({service for _, service in self._routes})

    def match(self, path: str) -> Match | None:
        """The route for a request path (without query), or None. Dot segments never match."""
        if not path.startswith("/") or any(seg in (".", "..") for seg in path.split("/")):
            return None
        for prefix, service in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :] or "/"
                return Match(service=service, prefix=prefix, upstream_path=rest)
        return None


def _check_prefix(prefix: str) -> None:
    if not prefix.startswith("/") or prefix == "/" or prefix.endswith("/"):
        raise RouteError(f"route prefix {prefix!r} must start with '/' and not end with one")
    if any(seg in ("", ".", "..") for seg in prefix[1:].split("/")):
        raise RouteError(f"route prefix {prefix!r} has an empty or dot segment")
