"""`python -m svc_a` as a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update({"CARAVAN_TRACE_EXPORTER": "none", "CARAVAN_LOG_FILE": str(tmp_path / "service.log")})
    env.update(extra)
    return env


def test_serves_health_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_a"],
        env=environment(tmp_path, CARAVAN_PORT=str(port)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body = None
        while body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as resp:
                    body = resp.read().decode()
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"svc-a did not serve: {process.stderr.read() if process.stderr else ''}")
                time.sleep(0.1)
        assert '"service":"svc-a"' in body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "svc_a"],
        env=environment(tmp_path, CARAVAN_PORT="not-a-port"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CARAVAN_PORT" in lines[0]
