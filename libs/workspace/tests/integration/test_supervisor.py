"""The real supervisord in a temporary state folder: start, run, crash and restart, stop, recover."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from caravan_workspace.runtime.supervisor import (
    Supervisor,
    SupervisorError,
    _marked_processes,
    _pid_alive,
    _terminate,
    free_port,
)

SERVER = textwrap.dedent(
    """
    import http.server, os, signal, sys, pathlib
    port = int(sys.argv[1])
    marker = pathlib.Path(os.environ["DRAIN_FILE"])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = os.environ.get("GREETING", "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def drain(signum, frame):
        marker.write_text(f"drained on {signum}")
        sys.exit(0)

    signal.signal(signal.SIGTERM, drain)
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode()


def _wait_serving(port: int, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _get(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _pid_alive(pid)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sv = Supervisor(tmp_path / "state")
    try:
        yield sv
    finally:
        # tear down everything, even when a test killed supervisord on purpose
        with contextlib.suppress(Exception):
            sv.shutdown(timeout=20)
        pid_text = sv.pidfile.read_text().strip() if sv.pidfile.exists() else ""
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            _terminate([int(pid_text)], grace=5)
        _terminate(_marked_processes(str(sv.home)), grace=5)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


def _add_server(sv: Supervisor, script: Path, port: int, tmp_path: Path, greeting: str = "hello") -> None:
    sv.add_program(
        "web",
        [sys.executable, str(script), str(port)],
        env={"GREETING": greeting, "DRAIN_FILE": str(tmp_path / "drained")},
        directory=tmp_path,
        stopsignal="TERM",
        stopwaitsecs=10,
    )


def test_start_is_idempotent_and_keeps_everything_in_the_state_folder(supervisor: Supervisor) -> None:
    assert supervisor.ensure_running() is True
    pid = supervisor.pid()
    assert pid is not None and _pid_alive(pid)
    assert supervisor.ensure_running() is False
    assert supervisor.pid() == pid
    assert int(supervisor.pidfile.read_text()) == pid
    assert supervisor.socket_path.exists()
    assert (supervisor.home.stat().st_mode & 0o777) == 0o700
    assert supervisor.status() == []


def test_program_runs_with_its_environment_and_logs(
    supervisor: Supervisor, server_script: Path, tmp_path: Path
) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path, greeting="hi, 100% there")
    status = supervisor.wait_for("web", ["RUNNING"])
    assert status.pid is not None and status.uptime >= 0
    assert _wait_serving(port) == "hi, 100% there"
    assert Path(status.log_file) == supervisor.log_path("web")
    # the same definition again changes nothing and keeps the process
    again = supervisor.add_program(
        "web",
        [sys.executable, str(server_script), str(port)],
        env={"GREETING": "hi, 100% there", "DRAIN_FILE": str(tmp_path / "drained")},
        directory=tmp_path,
        stopsignal="TERM",
        stopwaitsecs=10,
    )
    assert not again.any
    assert supervisor.program("web").pid == status.pid  # type: ignore[union-attr]


def test_changed_definition_restarts_the_program(
    supervisor: Supervisor, server_script: Path, tmp_path: Path
) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path, greeting="one")
    first = supervisor.wait_for("web", ["RUNNING"])
    assert _wait_serving(port) == "one"
    _add_server(supervisor, server_script, port, tmp_path, greeting="two")
    second = supervisor.wait_for("web", ["RUNNING"], new_pid_not=first.pid)
    assert _wait_serving(port) == "two"
    assert second.pid != first.pid


def test_killed_program_is_restarted(supervisor: Supervisor, server_script: Path, tmp_path: Path) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path)
    first = supervisor.wait_for("web", ["RUNNING"])
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    second = supervisor.wait_for("web", ["RUNNING"], new_pid_not=first.pid)
    assert second.pid not in (None, first.pid)
    assert _wait_serving(port) == "hello"


def test_stop_all_sends_the_stop_signal_and_waits(
    supervisor: Supervisor, server_script: Path, tmp_path: Path
) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path)
    pid = supervisor.wait_for("web", ["RUNNING"]).pid
    assert pid is not None
    supervisor.stop_all()
    assert supervisor.program("web").state == "STOPPED"  # type: ignore[union-attr]
    assert (tmp_path / "drained").read_text() == f"drained on {int(signal.SIGTERM)}"
    assert not _pid_alive(pid)
    assert supervisor.is_running()  # supervisord itself keeps running
    supervisor.start("web")
    assert _wait_serving(port) == "hello"


def test_remove_program_stops_it(supervisor: Supervisor, server_script: Path, tmp_path: Path) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path)
    pid = supervisor.wait_for("web", ["RUNNING"]).pid
    result = supervisor.remove_program("web")
    assert result.removed == ("web",)
    assert supervisor.program("web") is None
    assert pid is not None and not _pid_alive(pid)
    assert not supervisor.program_conf("web").exists()


def test_shutdown_stops_programs_and_supervisord(
    supervisor: Supervisor, server_script: Path, tmp_path: Path
) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path)
    program_pid = supervisor.wait_for("web", ["RUNNING"]).pid
    daemon_pid = supervisor.pid()
    assert program_pid is not None and daemon_pid is not None
    assert supervisor.shutdown() is not None
    assert not _pid_alive(daemon_pid) and not _pid_alive(program_pid)
    assert (tmp_path / "drained").exists()  # a graceful stop, not a kill
    assert not supervisor.is_running()
    assert supervisor.shutdown() is None  # nothing left to stop
    with pytest.raises(OSError):
        _get(port)


def test_killed_supervisord_is_recovered_and_its_orphans_stopped(
    supervisor: Supervisor, server_script: Path, tmp_path: Path
) -> None:
    port = free_port()
    _add_server(supervisor, server_script, port, tmp_path)
    orphan = supervisor.wait_for("web", ["RUNNING"]).pid
    daemon = supervisor.pid()
    assert orphan is not None and daemon is not None
    os.kill(daemon, signal.SIGKILL)
    assert _wait_gone(daemon)
    assert _pid_alive(orphan)  # the program outlived its supervisor and still holds the port
    assert not supervisor.is_running()

    assert supervisor.ensure_running() is True
    assert supervisor.pid() not in (None, daemon)
    assert _wait_gone(orphan)
    fresh = supervisor.wait_for("web", ["RUNNING"])  # the program file survived: it runs again
    assert fresh.pid != orphan
    assert _wait_serving(port) == "hello"


def test_stale_pidfile_and_socket_after_a_reboot_are_recovered(supervisor: Supervisor) -> None:
    supervisor.ensure_running()
    daemon = supervisor.pid()
    assert daemon is not None
    supervisor.shutdown()
    # what a reboot leaves: a pidfile naming a dead process and a socket nobody listens on
    supervisor.pidfile.write_text("999999\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(supervisor.socket_path))
    assert supervisor.socket_path.exists()
    assert not supervisor.is_running()

    assert supervisor.ensure_running() is True
    assert supervisor.is_running()
    assert int(supervisor.pidfile.read_text()) == supervisor.pid()


def test_calls_without_a_running_supervisor_fail_clearly(supervisor: Supervisor) -> None:
    assert supervisor.status() == []
    with pytest.raises(SupervisorError, match="not running"):
        supervisor.start("web")
    with pytest.raises(SupervisorError, match="not running"):
        supervisor.update()


def test_unknown_program_is_a_clear_error(supervisor: Supervisor) -> None:
    supervisor.ensure_running()
    with pytest.raises(SupervisorError, match="BAD_NAME"):
        supervisor.start("nope")


@pytest.fixture
def stubborn(tmp_path: Path) -> Path:
    """A program that ignores SIGTERM: only a kill at the end of its drain stops it."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: None)\ntime.sleep(600)\n"
    )
    return script


def test_shutdown_waits_for_the_longest_drain_and_names_who_held_it_up(
    supervisor: Supervisor, stubborn: Path
) -> None:
    supervisor.add_program("stubborn", [sys.executable, str(stubborn)], stopwaitsecs=3)
    supervisor.add_program("quick", [sys.executable, "-c", "import time; time.sleep(600)"], stopwaitsecs=30)
    supervisor.wait_for("stubborn", ["RUNNING"])
    supervisor.wait_for("quick", ["RUNNING"])
    assert supervisor.drains() == {"stubborn": 3, "quick": 30}
    done = supervisor.shutdown()  # waits up to the longest drain (30 s) plus the margin
    assert done is not None and done.slowest == "stubborn"
    assert done.slowest_s >= 3  # it ignored SIGTERM: killed at the end of its 3 s drain
    assert "killing 'stubborn'" in supervisor.logfile.read_text()


def test_a_shutdown_that_times_out_names_the_programs_still_running(
    supervisor: Supervisor, stubborn: Path
) -> None:
    supervisor.add_program("stubborn", [sys.executable, str(stubborn)], stopwaitsecs=20)
    pid = supervisor.wait_for("stubborn", ["RUNNING"]).pid
    with pytest.raises(
        SupervisorError, match=rf"did not stop within 1s: still running: stubborn \(pid {pid}\)"
    ):
        supervisor.shutdown(timeout=1)
