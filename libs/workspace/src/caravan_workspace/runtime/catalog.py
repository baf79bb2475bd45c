"""The local runtime's service catalogue: which instances run, and which of them are ready.

Two files under ``<state>/runtime/``, both JSON, both replaced atomically (write to a temporary
file in the same folder, then rename), so a reader never sees half a file:

``instances.json`` — written by the runtime (:func:`write_instances`) when it starts or stops an
instance; the health checker's input::

    {"version": 1,
     "services": {"svc-a": [{"id": "svc-a-1", "host": "127.0.0.1", "port": 18100,
                             "ready_path": "/health/ready"}]}}

``catalog.json`` — written by the health checker (``python -m caravan_workspace.runtime.catalog
--state-dir DIR --interval 1``, one supervised program) after every round of probes; what the
resolvers read (``caravan_commons.discovery_local.LocalCatalogResolver``)::

    {"version": 1, "interval_s": 1.0, "written_at": 1764200000.5,
     "services": {"svc-a": [{"id": "svc-a-1", "host": "127.0.0.1", "port": 18100,
                             "ready_path": "/health/ready", "ready": true,
                             "checked_at": 1764200000.4, "status": 200, "error": null}]}}

``ready`` is true when the last probe of ``GET http://host:port<ready_path>`` answered 2xx within
the probe timeout; ``status`` is the HTTP status (null when no answer), ``error`` says why a probe
failed. Times are Unix seconds. Every round probes every instance concurrently, so an instance
that dies is marked not ready within one interval (plus the probe timeout, at most the interval).

catalog.json's schema is commons' (:class:`caravan_commons.discovery_local.CatalogDocument`): the
checker writes the very document the resolvers decode. Besides commons it needs only the standard
library and the workspace's stdlib-only ``state`` module, so commons' tests run it by path (``python
-P .../catalog.py``) under their own interpreter, which does not install the workspace package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

if __name__ == "__main__" and not __package__:  # run by path: the package this file belongs to
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from caravan_commons.discovery_local import CATALOG_VERSION, CatalogDocument, CatalogEntry, decode_catalog
from caravan_workspace.state import write_atomic

SCHEMA_VERSION = CATALOG_VERSION
INSTANCES_FILE = "instances.json"
CATALOG_FILE = "catalog.json"

_SERVICE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class CatalogError(ValueError):
    """An instances or catalogue file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class InstanceSpec:
    """One instance the runtime started (an entry of instances.json)."""

    id: str
    host: str
    port: int
    ready_path: str = "/health/ready"


def runtime_dir(state_dir: Path | str) -> Path:
    return Path(state_dir) / "runtime"


def instances_path(state_dir: Path | str) -> Path:
    return runtime_dir(state_dir) / INSTANCES_FILE


def catalog_path(state_dir: Path | str) -> Path:
    return runtime_dir(state_dir) / CATALOG_FILE


def discovery_env(state_dir: Path | str) -> dict[str, str]:
    """The settings that point a program's discovery at this catalogue."""
    return {"CARAVAN_DISCOVERY_BACKEND": "local", "CARAVAN_DISCOVERY_CATALOG": str(catalog_path(state_dir))}


# ---------------------------------------------------------------------------- validation


def _instance_spec(service: str, raw: Any, where: str) -> InstanceSpec:
    if isinstance(raw, InstanceSpec):
        raw = asdict(raw)
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: an instance must be an object with id, host, port")
    unknown = set(raw) - {"id", "host", "port", "ready_path"}
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    instance_id, host, port = raw.get("id"), raw.get("host"), raw.get("port")
    ready_path = raw.get("ready_path", "/health/ready")
    if not isinstance(instance_id, str) or not _INSTANCE_ID.match(instance_id):
        raise CatalogError(f"{where}: id {instance_id!r} must be letters, digits, '.', '_', ':' or '-'")
    if host not in _LOOPBACK:
        raise CatalogError(
            f"{where}: host {host!r} is not a loopback address (the local runtime binds 127.0.0.1)"
        )
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise CatalogError(f"{where}: port {port!r} must be an integer in 1..65535")
    if (
        not isinstance(ready_path, str)
        or not ready_path.startswith("/")
        or any(c in ready_path for c in " \r\n")
    ):
        raise CatalogError(f"{where}: ready_path {ready_path!r} must be a path starting with '/'")
    return InstanceSpec(id=instance_id, host=host, port=port, ready_path=ready_path)


def validate_instances(mapping: Mapping[str, Sequence[Any]]) -> dict[str, list[InstanceSpec]]:
    """Check ``{service: [instance, ...]}``; raise :class:`CatalogError` naming the bad entry."""
    if not isinstance(mapping, Mapping):
        raise CatalogError("services must be an object mapping service names to lists of instances")
    services: dict[str, list[InstanceSpec]] = {}
    seen: dict[tuple[str, int], str] = {}
    for service, instances in mapping.items():
        if not isinstance(service, str) or not _SERVICE.match(service):
            raise CatalogError(f"service name {service!r} must match {_SERVICE.pattern}")
        if isinstance(instances, str | bytes) or not isinstance(instances, Sequence):
            raise CatalogError(f"service {service!r}: instances must be a list")
        specs = [
            _instance_spec(service, raw, f"service {service!r} instance #{i}")
            for i, raw in enumerate(instances)
        ]
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise CatalogError(f"service {service!r}: duplicate instance id")
        for spec in specs:
            other = seen.setdefault((spec.host, spec.port), f"{service}/{spec.id}")
            if other != f"{service}/{spec.id}":
                raise CatalogError(f"{service}/{spec.id}: port {spec.port} is already used by {other}")
        services[service] = specs
    return services


# ---------------------------------------------------------------------------- files


@contextlib.contextmanager
def _instances_lock(state_dir: Path | str) -> Iterator[None]:
    """Serialise writers of instances.json (the runtime may run several commands at once)."""
    folder = runtime_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".instances.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_instances_unlocked(state_dir: Path | str, services: Mapping[str, Sequence[InstanceSpec]]) -> Path:
    document = {
        "version": SCHEMA_VERSION,
        "services": {name: [asdict(s) for s in specs] for name, specs in sorted(services.items()) if specs},
    }
    path = instances_path(state_dir)
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode() + b"\n")
    return path


def write_instances(state_dir: Path | str, mapping: Mapping[str, Sequence[Any]]) -> Path:
    """Validate and atomically write ``<state>/runtime/instances.json``; returns its path.

    ``mapping`` is ``{service: [{"id", "host", "port", "ready_path"?}, ...]}`` (dicts or
    :class:`InstanceSpec`). Bad input raises :class:`CatalogError` and leaves the file as it was.
    """
    services = validate_instances(mapping)
    with _instances_lock(state_dir):
        return _write_instances_unlocked(state_dir, services)


def add_instance(state_dir: Path | str, service: str, instance: InstanceSpec | Mapping[str, Any]) -> None:
    """Add (or replace, by id) one instance of ``service`` in instances.json, under a lock."""
    with _instances_lock(state_dir):
        services: dict[str, list[Any]] = {k: list(v) for k, v in read_instances(state_dir).items()}
        spec = _instance_spec(service, instance, f"service {service!r} instance")
        services[service] = [s for s in services.get(service, []) if s.id != spec.id] + [spec]
        _write_instances_unlocked(state_dir, validate_instances(services))


def remove_instance(state_dir: Path | str, service: str, instance_id: str) -> bool:
    """Remove one instance from instances.json; False when it was not there."""
    with _instances_lock(state_dir):
        services = read_instances(state_dir)
        before = services.get(service, [])
        after = [s for s in before if s.id != instance_id]
        if len(after) == len(before):
            return False
        services[service] = after
        _write_instances_unlocked(state_dir, services)
        return True


def read_instances(state_dir: Path | str) -> dict[str, list[InstanceSpec]]:
    """instances.json as validated specs; a missing file is an empty catalogue."""
    path = instances_path(state_dir)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(document, Mapping) or document.get("version") != SCHEMA_VERSION:
        raise CatalogError(f"{path}: expected an object with version {SCHEMA_VERSION}")
    try:
        return validate_instances(document.get("services", {}))
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def read_catalog(state_dir: Path | str) -> dict[str, list[CatalogEntry]]:
    """catalog.json as commons decodes it (for gates and ``invoke status``); missing file → empty."""
    path = catalog_path(state_dir)
    try:
        return decode_catalog(path.read_bytes()).services
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # msgspec.DecodeError is a ValueError
        raise CatalogError(f"{path}: {exc}") from exc


def ready_instances(state_dir: Path | str, service: str) -> list[CatalogEntry]:
    return [s for s in read_catalog(state_dir).get(service, []) if s.ready]


# ---------------------------------------------------------------------------- probing


async def probe(spec: InstanceSpec, timeout: float) -> CatalogEntry:
    """``GET ready_path`` over a fresh connection; ready when the status is 2xx."""
    status: int | None = None
    error: str | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(spec.host, spec.port)
            host = f"[{spec.host}]" if ":" in spec.host else spec.host
            writer.write(
                f"GET {spec.ready_path} HTTP/1.1\r\nHost: {host}:{spec.port}\r\n"
                "User-Agent: caravan-catalog\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await reader.readline()
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                error = f"not an HTTP answer: {line[:60]!r}"
            else:
                status = int(parts[1])
                if not 200 <= status < 300:
                    error = f"answered {status}"
    except TimeoutError:
        error = f"no answer within {timeout:g}s"
    except OSError as exc:
        error = exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return CatalogEntry(
        id=spec.id,
        host=spec.host,
        port=spec.port,
        ready_path=spec.ready_path,
        ready=error is None,
        checked_at=time.time(),
        status=status,
        error=error,
    )


async def check_once(
    state_dir: Path | str, *, interval: float, timeout: float
) -> dict[str, list[CatalogEntry]]:
    """One round: read instances.json, probe every instance concurrently, write catalog.json."""
    services = read_instances(state_dir)
    flat = [(name, spec) for name, specs in services.items() for spec in specs]
    results = await asyncio.gather(*(probe(spec, timeout) for _, spec in flat))
    catalog: dict[str, list[CatalogEntry]] = {name: [] for name in sorted(services)}
    for (name, _), result in zip(flat, results, strict=True):
        catalog[name].append(result)
    document = CatalogDocument(
        version=SCHEMA_VERSION, interval_s=interval, written_at=time.time(), services=catalog
    )
    write_atomic(catalog_path(state_dir), msgspec.json.encode(document) + b"\n")
    return catalog


async def run_checker(state_dir: Path | str, *, interval: float, timeout: float, stop: asyncio.Event) -> None:
    """Probe every ``interval`` seconds until ``stop`` is set. A bad instances.json is reported
    on stderr and retried next round (the last good catalogue stays in place)."""
    loop = asyncio.get_running_loop()
    reported: str | None = None
    while not stop.is_set():
        started = loop.time()
        try:
            await check_once(state_dir, interval=interval, timeout=timeout)
            reported = None
        except CatalogError as exc:
            if str(exc) != reported:  # once per distinct problem, not once per round
                reported = str(exc)
                print(f"caravan-catalog: {exc}", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, started + interval - loop.time()))


CHECKER_PROGRAM = "catalog-checker"


def checker_command(state_dir: Path | str, *, interval: float = 1.0, python: str | None = None) -> list[str]:
    """The health checker's command line, for ``Supervisor.add_program(CHECKER_PROGRAM, ...)``."""
    if not interval > 0:
        raise ValueError(f"interval must be greater than 0, got {interval!r}")
    return [
        python or sys.executable,
        "-m",
        "caravan_workspace.runtime.catalog",
        "--state-dir",
        str(Path(state_dir).resolve()),
        "--interval",
        f"{interval:g}",
    ]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caravan_workspace.runtime.catalog",
        description="Probe every instance in <state>/runtime/instances.json and keep catalog.json current.",
    )
    parser.add_argument("--state-dir", required=True, type=Path, help="the workspace state folder")
    parser.add_argument("--interval", type=_positive, default=1.0, help="seconds between rounds (default 1)")
    parser.add_argument(
        "--timeout", type=_positive, help="probe timeout in seconds (default min(1, interval))"
    )
    parser.add_argument(
        "--once", action="store_true", help="one round, then exit (0 when every instance is ready)"
    )
    args = parser.parse_args(argv)
    timeout = args.timeout if args.timeout is not None else min(1.0, args.interval)
    if timeout > args.interval:
        parser.error(f"--timeout {timeout:g} must not exceed --interval {args.interval:g}")
    if not args.state_dir.is_dir():
        parser.error(f"--state-dir {args.state_dir} is not a folder")

    if args.once:
        try:
            catalog = asyncio.run(check_once(args.state_dir, interval=args.interval, timeout=timeout))
        except CatalogError as exc:
            print(f"caravan-catalog: {exc}", file=sys.stderr)
            return 2
        return 0 if all(s.ready for entries in catalog.values() for s in entries) else 1

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_checker(args.state_dir, interval=args.interval, timeout=timeout, stop=stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
