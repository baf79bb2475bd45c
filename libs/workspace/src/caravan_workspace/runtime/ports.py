"""Port allocation for the local runtime, from the foundation model's tier ranges.

Allocations persist in ``<state>/runtime/ports.json`` so a program keeps its port across restarts
(and Prometheus targets stay stable). A port held by a process that is not ours is a collision:
a clear error naming the port, the program and the holder, never a silent re-bind.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from caravan_workspace.foundation import Foundation
from caravan_workspace.state import write_atomic


class PortCollision(Exception):
    pass


@dataclass(frozen=True)
class Listener:
    pid: int
    host: str
    port: int


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def listeners() -> list[Listener]:
    """Every TCP socket in LISTEN state on this machine, with its owning pid."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.pid:
            found.append(Listener(conn.pid, conn.laddr.ip, conn.laddr.port))
    return found


def holder_of(port: int) -> str:
    for listener in listeners():
        if listener.port == port:
            try:
                proc = psutil.Process(listener.pid)
                return f"pid {listener.pid} ({' '.join(proc.cmdline()[:3]) or proc.name()})"
            except psutil.Error:
                return f"pid {listener.pid}"
    return "another process"


def process_tree(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid, *(child.pid for child in proc.children(recursive=True))}
    except psutil.Error:
        return set()


def read_ports(state_dir: Path) -> dict[str, int]:
    """The allocations as recorded (program → port), without loading the foundation model."""
    path = state_dir / "runtime" / "ports.json"
    try:
        return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


PORT_OFFSET_ENV = "CARAVAN_PORT_OFFSET"
MAX_PORT_OFFSET = 40000


def port_offset(environ: Mapping[str, str] | None = None) -> int:
    """``CARAVAN_PORT_OFFSET``: shifts every tier's range (and the runtime's) by that many ports, so
    a second workspace on the machine — the integration suite's, say — never meets the first's
    ports, even those of its stopped programs. 0 when unset."""
    raw = (os.environ if environ is None else environ).get(PORT_OFFSET_ENV, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > MAX_PORT_OFFSET:
        raise PortCollision(
            f"{PORT_OFFSET_ENV} must be a whole number from 0 to {MAX_PORT_OFFSET}, got {raw!r}"
        )
    return int(raw)


class PortBook:
    def __init__(self, state_dir: Path, foundation: Foundation) -> None:
        self.path = state_dir / "runtime" / "ports.json"
        self.foundation = foundation
        self.offset = port_offset()
        self._ports: dict[str, int] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def tier_range(self, member: str) -> tuple[int, int]:
        """The ports ``member``'s tier allocates from (the foundation's, shifted by the offset)."""
        low, high = self.foundation.tier_of(member).ports
        return low + self.offset, high + self.offset

    def runtime_range(self) -> tuple[int, int]:
        low, high = self.foundation.port_range
        return low + self.offset, high + self.offset

    def allocated(self) -> dict[str, int]:
        return dict(self._ports)

    def port_for(self, program: str, member: str) -> int:
        """The program's port: its earlier allocation, else the first free one in its tier's range."""
        if program in self._ports:
            return self._ports[program]
        low, high = self.tier_range(member)
        taken = set(self._ports.values())
        for port in range(low, high + 1):
            if port not in taken and port_is_free(port):
                self._ports[program] = port
                write_atomic(self.path, json.dumps(self._ports, indent=2, sort_keys=True).encode())
                return port
        raise PortCollision(
            f"no free port left for {program} in tier {self.foundation.tier_of(member).name} ({low}-{high})"
        )

    def assign(self, program: str, port: int) -> None:
        """Record a port chosen elsewhere (e.g. configured by the user) as the program's."""
        if self._ports.get(program) != port:
            self._ports[program] = port
            write_atomic(self.path, json.dumps(self._ports, indent=2, sort_keys=True).encode())

    def release(self, programs: Iterable[str]) -> None:
        for name in programs:
            self._ports.pop(name, None)
        write_atomic(self.path, json.dumps(self._ports, indent=2, sort_keys=True).encode())


def check_collision(program: str, port: int, ours: set[int]) -> None:
    """Raise PortCollision when ``port`` is held by a process outside ``ours``."""
    for listener in listeners():
        if listener.port == port and listener.pid not in ours:
            raise PortCollision(
                f"port {port} allocated to {program} is taken by {holder_of(port)}: stop that process, "
                f"or set a different port range in foundation/foundation.toml"
            )
