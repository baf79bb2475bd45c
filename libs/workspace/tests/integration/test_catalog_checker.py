"""The health checker as the runtime runs it: a supervised program probing real HTTP server
programs; an instance killed with SIGKILL leaves the ready set (polled with a bound, no timing
assertion) and comes back when supervisord restarts it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from caravan_workspace.runtime.catalog import CHECKER_PROGRAM, checker_command, read_catalog, write_instances
from caravan_workspace.runtime.supervisor import (
    Supervisor,
    _marked_processes,
    _pid_alive,
    _terminate,
    free_port,
)

T = TypeVar("T")

SERVER = textwrap.dedent(
    """
    import http.server, sys
    port = int(sys.argv[1])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = 200 if self.path == "/health/ready" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


def poll(probe: Callable[[], T], accept: Callable[[T], bool], bound: float = 40.0) -> T:
    deadline = time.monotonic() + bound
    last = probe()
    while not accept(last):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {bound}s; last: {last!r}")
        time.sleep(0.05)
        last = probe()
    return last


def ready_ids(state: Path, service: str) -> set[str]:
    return {s.id for s in read_catalog(state).get(service, []) if s.ready}


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sv = Supervisor(tmp_path / "state")
    try:
        yield sv
    finally:
        with contextlib.suppress(Exception):
            sv.shutdown(timeout=20)
        pid_text = sv.pidfile.read_text().strip() if sv.pidfile.exists() else ""
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            _terminate([int(pid_text)], grace=5)
        _terminate(_marked_processes(str(sv.home)), grace=5)


def test_supervised_checker_tracks_instances_dying_and_restarting(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    state = supervisor.state_dir
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    ports = {"svc-a-1": free_port(), "svc-a-2": free_port()}
    for name, port in ports.items():
        supervisor.add_program(name, [sys.executable, str(script), str(port)], startsecs=0, startretries=10)
    write_instances(
        state,
        {"svc-a": [{"id": name, "host": "127.0.0.1", "port": port} for name, port in ports.items()]},
    )
    supervisor.add_program(CHECKER_PROGRAM, checker_command(state, interval=0.25))

    poll(lambda: ready_ids(state, "svc-a"), lambda ids: ids == {"svc-a-1", "svc-a-2"})
    checker_pid = supervisor.program(CHECKER_PROGRAM).pid  # type: ignore[union-attr]

    victim = supervisor.program("svc-a-1")
    assert victim is not None and victim.pid is not None
    supervisor.stop("svc-a-1")
    entries = poll(
        lambda: read_catalog(state)["svc-a"],
        lambda es: {e.id for e in es if e.ready} == {"svc-a-2"},
    )
    down = next(e for e in entries if e.id == "svc-a-1")
    assert down.ready is False and down.status is None and down.error

    # a crash (SIGKILL) is restarted by supervisord and the instance becomes ready again
    supervisor.start("svc-a-1")
    poll(lambda: ready_ids(state, "svc-a"), lambda ids: ids == {"svc-a-1", "svc-a-2"})
    pid = supervisor.program("svc-a-2").pid  # type: ignore[union-attr]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    poll(lambda: supervisor.program("svc-a-2"), lambda s: s is not None and s.pid not in (None, pid))
    poll(lambda: ready_ids(state, "svc-a"), lambda ids: ids == {"svc-a-1", "svc-a-2"})
    checker = supervisor.wait_for(CHECKER_PROGRAM, ["RUNNING"])
    assert checker.pid == checker_pid  # the same checker process all along: it never crashed
