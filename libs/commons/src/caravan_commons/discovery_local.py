"""The ``local`` discovery backend: the local runtime's catalogue of instances and their readiness.

The runtime's health checker (``python -m caravan_workspace.runtime.catalog``) probes every
instance's ready path once per interval and atomically replaces ``<state>/runtime/catalog.json``::

    {"version": 1, "interval_s": 1.0, "written_at": 1764200000.5,
     "services": {"svc-a": [{"id": "svc-a-1", "host": "127.0.0.1", "port": 18100,
                             "ready_path": "/health/ready", "ready": true,
                             "checked_at": 1764200000.4, "status": 200, "error": null}]}}

:class:`LocalCatalogResolver` returns the *ready* instances of a service. On the hot path it only
compares the file's identity (inode, size, mtime) with what it decoded last, and no more often
than every ``stat_interval`` seconds; the file is decoded again only when it changed. A file
that is missing or does not decode keeps the last good answer (an error is raised only when there
never was one), so a torn moment never empties the healthy set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from loguru import logger

from caravan_commons.discovery import Instance, Resolver
from caravan_commons.errors import UpstreamUnavailableError

CATALOG_VERSION = 1


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    host: str
    port: int
    ready_path: str = "/health/ready"
    ready: bool = False
    checked_at: float = 0.0
    status: int | None = None
    error: str | None = None


class CatalogDocument(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    interval_s: float = 1.0
    written_at: float = 0.0
    services: dict[str, list[CatalogEntry]] = msgspec.field(default_factory=dict)


_decoder = msgspec.json.Decoder(CatalogDocument)


def decode_catalog(data: bytes) -> CatalogDocument:
    """Decode catalog.json; :class:`msgspec.DecodeError` / ``ValueError`` on a bad document."""
    document = _decoder.decode(data)
    if document.version != CATALOG_VERSION:
        raise ValueError(f"catalog version {document.version} is not {CATALOG_VERSION}")
    return document


def default_catalog_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / "runtime" / "catalog.json"


class LocalCatalogResolver(Resolver):
    """Ready instances from the local runtime's catalog.json (re-read when the file changes).

    ``stale_after`` (seconds, optional): when the catalogue was last written longer ago than this
    — its checker is not running — every instance is treated as not ready (fail closed). Unset,
    the last known readiness is served (fail open) and a warning is logged once per change.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        stat_interval: float = 0.05,
        stale_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if stat_interval < 0 or (stale_after is not None and stale_after <= 0):
            raise ValueError("stat_interval must be >= 0 and stale_after > 0")
        self.path = Path(path)
        self._stat_interval = stat_interval
        self._stale_after = stale_after
        self._clock = clock
        self._wall_clock = wall_clock
        self._next_stat = 0.0
        self._identity: tuple[int, int, int] | None = None
        self._document: CatalogDocument | None = None
        self._ready: dict[str, list[Instance]] = {}
        self._problem: str | None = None

    def _refresh(self) -> None:
        now = self._clock()
        if now < self._next_stat:
            return
        self._next_stat = now + self._stat_interval
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._note_problem(f"{self.path} does not exist (is the runtime's catalog checker running?)")
            return
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity == self._identity:
            return
        try:
            document = decode_catalog(self.path.read_bytes())
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            self._note_problem(f"{self.path} is not a valid catalogue: {exc}")
            return
        self._identity = identity
        self._document = document
        self._problem = None
        self._ready = {
            service: [
                Instance(
                    service=service,
                    instance_id=e.id,
                    host=e.host,
                    port=e.port,
                    meta={"ready_path": e.ready_path, "checked_at": f"{e.checked_at:.3f}"},
                )
                for e in entries
                if e.ready
            ]
            for service, entries in document.services.items()
        }

    def _note_problem(self, problem: str) -> None:
        if problem != self._problem:
            self._problem = problem
            logger.warning("local discovery: {}", problem)

    @property
    def document(self) -> CatalogDocument | None:
        """The last catalogue decoded (None before the first good read)."""
        self._refresh()
        return self._document

    def is_stale(self) -> bool:
        document = self.document
        if document is None or self._stale_after is None:
            return False
        return self._wall_clock() - document.written_at > self._stale_after

    async def resolve(self, service: str) -> list[Instance]:
        self._refresh()
        if self._document is None:
            raise UpstreamUnavailableError(f"local discovery: {self._problem}", upstream=service)
        if self._stale_after is not None and self.is_stale():
            return []
        return list(self._ready.get(service, ()))
