"""The local runtime on the real supervisor, with real processes, in a temporary state folder.

The security probe (a real commons app with the identity settings of svc-a) stands in for a
service here, so these tests need no published commons wheel.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from caravan_workspace.registry import Context, GateFailure
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.ports import PortCollision, read_ports
from caravan_workspace.runtime.programs import http_status
from caravan_workspace.stages import foundation as stage1

INVOKE = Path(sys.executable).with_name("invoke")


def wait_until(condition, what, limit=30.0):
    """Poll for an outcome (never an assertion on how long it took); fail after a generous bound."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not reached: {what}")


@pytest.fixture
def ctx(repo_root, tmp_path):
    context = Context(root=repo_root, state_dir=tmp_path / "state")
    yield context
    rt = LocalRuntime(context)
    rt.supervisor.shutdown()


@pytest.fixture
def provisioned(ctx):
    stage1.provision(ctx)
    return ctx


def probe_pid(rt):
    status = rt.supervisor.program(stage1.PROBE)
    return status.pid if status and status.state == "RUNNING" else None


def test_provisioning_starts_the_supervisor_and_the_probe_on_loopback(provisioned):
    rt = LocalRuntime(provisioned)
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    low, high = rt.foundation.tier_of("svc-a").ports
    assert low <= port <= high
    assert http_status(port, "/health/ready") == 200
    assert stage1.network_plan(provisioned).endswith("all on loopback at their allocated ports")
    for key in (provisioned.state_dir / "identity").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # idempotent: a second provisioning changes nothing
    again = stage1.provision(provisioned)
    assert again.changed is False


def test_allowed_forbidden_and_anonymous_calls(provisioned):
    assert "forbidden → 403, anonymous → 401" in stage1.security_groups(provisioned)
    rt = LocalRuntime(provisioned)
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    assert stage1.check_enforcement(rt, "svc-a", port, "/probe") == []
    # the same probe with enforcement off would be caught: an anonymous call must get 401
    assert http_status(port, "/probe") == 401


def test_a_crashed_process_is_restarted_by_the_supervisor(provisioned):
    rt = LocalRuntime(provisioned)
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    before = wait_until(lambda: probe_pid(rt), "probe running")
    os.kill(before, signal.SIGKILL)
    after = wait_until(lambda: (pid := probe_pid(rt)) and pid != before and pid, "probe restarted")
    assert after != before
    wait_until(lambda: http_status(port, "/health/ready") == 200, "probe ready again")


def test_invoke_down_drains_an_in_flight_request(provisioned, repo_root):
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    rt = LocalRuntime(provisioned)
    headers = stage1._signer(rt, "svc-b").headers_for(
        "svc-a", "GET", "/probe/slow"
    )  # svc-b may call any svc-a path
    answer = {}

    def slow_call():
        request = urllib.request.Request(f"http://127.0.0.1:{port}/probe/slow?seconds=2", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            answer["status"] = response.status
            answer["body"] = json.loads(response.read())

    caller = threading.Thread(target=slow_call)
    caller.start()
    wait_until(lambda: rt.supervisor.program(stage1.PROBE).state == "RUNNING", "probe running")
    time.sleep(0.3)  # let the request reach the server before stopping (ordering, not a measurement)
    env = {**os.environ, "CARAVAN_STATE_DIR": str(provisioned.state_dir)}
    down = subprocess.run(
        [str(INVOKE), "down"], cwd=repo_root, env=env, capture_output=True, text=True, timeout=60
    )
    caller.join(timeout=30)
    assert down.returncode == 0, down.stderr
    assert answer == {"status": 200, "body": {"service": "svc-a", "caller": "svc-b"}}
    assert not rt.supervisor.is_running()


def test_stale_state_is_recovered_without_manual_cleanup(provisioned):
    rt = LocalRuntime(provisioned)
    pid = rt.supervisor.pid()
    os.kill(pid, signal.SIGKILL)  # the supervisor dies as on a reboot: pidfile and socket stay behind
    wait_until(lambda: not rt.supervisor.is_running(), "supervisor gone")
    result = stage1.provision(provisioned)
    assert result.changed
    assert rt.supervisor.is_running() and rt.supervisor.pid() != pid
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    wait_until(lambda: http_status(port, "/health/ready") == 200, "probe ready after recovery")
    assert stage1.network_plan(provisioned)


def test_a_port_taken_by_a_foreign_process_is_a_clear_error(ctx):
    rt = LocalRuntime(ctx)
    port = rt.ports.port_for(stage1.PROBE, "svc-a")  # allocated, then taken by someone else
    with socket.socket() as foreign:
        foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        foreign.bind(("127.0.0.1", port))
        foreign.listen()
        with pytest.raises(
            (PortCollision, GateFailure),
            match=f"port {port} allocated to probe is taken by pid {os.getpid()}",
        ):
            stage1.provision(ctx)


def test_invoke_status_shows_each_program(provisioned, repo_root):
    env = {**os.environ, "CARAVAN_STATE_DIR": str(provisioned.state_dir), "COLUMNS": "200"}
    done = subprocess.run(
        [str(INVOKE), "status"], cwd=repo_root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    port = read_ports(provisioned.state_dir)[stage1.PROBE]
    line = next(line for line in done.stdout.splitlines() if "probe" in line)
    assert "RUNNING" in line and f"127.0.0.1:{port}" in line and "ready" in line
