"""Which resolver the gateway uses: the commons static backend, or a JSON catalogue file.

The ``file`` backend reads ``{"svc-a": ["http://127.0.0.1:8101", ...]}`` and re-reads it when its
modification time changes (checked at most every ``check_interval`` seconds), so instances added
or removed by whoever writes the file are picked up during traffic. Writers replace the file
atomically (write a temporary file, then rename).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

import msgspec

from caravan_commons.discovery import DiscoveryConfigError, Instance, Resolver, StaticResolver, parse_instance


class FileResolver(Resolver):
    def __init__(
        self, path: str, *, check_interval: float = 0.25, clock: Callable[[], float] = time.monotonic
    ):
        self.path = path
        self._interval = check_interval
        self._clock = clock
        self._next_check = 0.0
        self._mtime: int | None = None
        self._instances: dict[str, list[Instance]] = {}
        self._load()

    def _load(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._instances, self._mtime = {}, None
            return
        if stat.st_mtime_ns == self._mtime:
            return
        try:
            raw = msgspec.json.decode(open(self.path, "rb").read(), type=dict[str, list[str]])  # noqa: SIM115
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            if self._mtime is None:
                raise DiscoveryConfigError(f"{self.path}: not a valid catalogue: {exc}") from exc
            return  # keep the last good catalogue while a writer misbehaves
        self._instances = {s: [parse_instance(s, u) for u in urls] for s, urls in raw.items()}
        self._mtime = stat.st_mtime_ns

    async def resolve(self, service: str) -> list[Instance]:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._interval
            self._load()
        return self._instances.get(service, [])


def build_resolver(backend: str, discovery_file: str | None, environ: Mapping[str, str]) -> Resolver:
    if backend == "file":
        assert discovery_file is not None  # checked by GatewaySettings
        return FileResolver(discovery_file)
    return StaticResolver.from_env(environ)
