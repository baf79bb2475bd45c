"""Real processes for the local-discovery tests: tiny HTTP servers and the runtime's health checker.

The checker is the workspace's ``caravan_workspace/runtime/catalog.py``; it needs only the
standard library, so it runs from the repository by path under this interpreter (the commons
test environment does not install the workspace package). ``-P``: the script's folder is not put on
``sys.path`` — its sibling ``inspect.py`` (the console's) would shadow the standard library's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[4]
CHECKER = REPO / "libs" / "workspace" / "src" / "caravan_workspace" / "runtime" / "catalog.py"

SERVER = textwrap.dedent(
    """
    import http.server, sys
    port, name = int(sys.argv[1]), sys.argv[2]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
        time.sleep(0.05)


@contextlib.contextmanager
def http_server(name: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real HTTP server process on 127.0.0.1 answering 200 with its name on every path."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), name])
    try:
        wait_port(port)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@contextlib.contextmanager
def health_checker(state_dir: Path, interval: float) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-P", str(CHECKER), "--state-dir", str(state_dir), "--interval", str(interval)],
        env={k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "NOMAD_"))},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_instances(state_dir: Path, services: dict[str, list[dict[str, object]]]) -> None:
    """instances.json as the runtime writes it (atomically)."""
    path = state_dir / "runtime" / "instances.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": 1, "services": services}))
    tmp.replace(path)


async def poll_until(probe: Callable[[], object], accept: Callable[[T], bool], *, bound: float = 30.0) -> T:
    """Call ``probe`` (sync or async) until ``accept(result)``; fail after ``bound`` seconds."""
    import asyncio
    import inspect

    deadline = time.monotonic() + bound
    last: object = None
    while time.monotonic() < deadline:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if accept(last):  # type: ignore[arg-type]
            return last  # type: ignore[return-value]
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not reached within {bound}s; last result: {last!r}")
