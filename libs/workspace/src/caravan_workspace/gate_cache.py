"""Gate results cached by their inputs.

A gate whose result depends only on files — a test suite, migrations applied to an empty
database, the template rendered and tested — declares what it reads with an *inputs function*,
given to the registry decorator::

    @gate("service.domain_tests", inputs=service_inputs("tests/unit/domain"))
    def domain_tests(ctx, service): ...

The inputs function takes the same ``(ctx, **args)`` as the gate and returns :class:`Inputs`:
files and folders (digested by content) and named values (a commons version, a database kind, a
resolved dependency set). The engine keys the gate's last *passing* result by a digest of the
check's name, its args and those inputs, and while the key is unchanged it reuses the result
("passed (cached: inputs unchanged since <time>)") instead of running the gate; ``--fresh``
re-runs everything. A gate without an inputs function — one that probes the running system —
always probes. A failure is never cached.

Entries live in ``<state>/cache/gates/`` (``invoke down`` leaves them), one JSON file per check and
args, carrying a checksum of its own content: an entry that cannot be read or whose checksum does
not match is deleted and the gate runs — a corrupt entry is never trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan_workspace.state import write_atomic

CACHE_DIR = ("cache", "gates")
ENTRY_VERSION = 1
#: Parts of a path that are never inputs: caches and build output.
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Inputs:
    """What a gate's result depends on: files or folders (by content) and named values."""

    files: Iterable[Path] = ()
    values: Mapping[str, str] = field(default_factory=dict)

    def digests(self, root: Path) -> dict[str, str]:
        """One digest per input, by name (a path relative to ``root``, or a value's name)."""
        out = {f"value:{name}": _sha(value.encode()) for name, value in sorted(self.values.items())}
        for path in sorted(set(self.files)):
            name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            out[f"files:{name}"] = tree_digest(path)
        return out


InputsFn = Callable[..., Inputs]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_digest(path: Path) -> str:
    """A digest of a file, or of every file under a folder (names and contents); "absent" for
    neither."""
    if path.is_file():
        return _sha(path.read_bytes())
    if not path.is_dir():
        return "absent"
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        relative = item.relative_to(path)
        if not item.is_file() or IGNORED_PARTS.intersection(relative.parts) or item.suffix == ".pyc":
            continue
        digest.update(str(relative).encode() + b"\0" + _sha(item.read_bytes()).encode() + b"\0")
    return digest.hexdigest()


def cache_key(check: str, args: Mapping[str, Any], digests: Mapping[str, str]) -> str:
    return _sha(json.dumps([check, dict(args), dict(digests)], sort_keys=True, default=str).encode())


@dataclass(frozen=True)
class Entry:
    key: str
    detail: str
    at: str  # when the gate last ran and passed with these inputs
    duration_s: float
    inputs: Mapping[str, str]


class GateCache:
    """The cache folder of one state folder; safe to use from the engine's worker threads
    (each check and args has its own file, written atomically)."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir.joinpath(*CACHE_DIR)

    def path(self, check: str, args: Mapping[str, Any]) -> Path:
        tag = _sha(json.dumps(dict(args), sort_keys=True, default=str).encode())[:12]
        return self.folder / f"{check}-{tag}.json"

    def lookup(self, check: str, args: Mapping[str, Any], key: str) -> Entry | None:
        """The entry for this key, or None (absent, stale, or corrupt — a corrupt one is deleted)."""
        path = self.path(check, args)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        entry = _decode(raw)
        if entry is None:
            path.unlink(missing_ok=True)
            return None
        return entry if entry.key == key else None

    def store(self, check: str, args: Mapping[str, Any], entry: Entry) -> None:
        body = {
            "version": ENTRY_VERSION,
            "key": entry.key,
            "detail": entry.detail,
            "at": entry.at,
            "duration_s": entry.duration_s,
            "inputs": dict(entry.inputs),
        }
        body["checksum"] = _checksum(body)
        write_atomic(self.path(check, args), json.dumps(body, indent=2, sort_keys=True).encode())

    def forget(self, check: str, args: Mapping[str, Any]) -> None:
        self.path(check, args).unlink(missing_ok=True)


def _checksum(body: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "checksum"}
    return _sha(json.dumps(rest, sort_keys=True).encode())


def _decode(raw: bytes) -> Entry | None:
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("version") != ENTRY_VERSION:
            return None
        if body.get("checksum") != _checksum(body):
            return None
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            return None
        return Entry(
            key=str(body["key"]),
            detail=str(body["detail"]),
            at=str(body["at"]),
            duration_s=float(body["duration_s"]),
            inputs={str(k): str(v) for k, v in inputs.items()},
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
