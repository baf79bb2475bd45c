"""`invoke console` as a user runs it: the printed link logs in, the token file is the owner's
only, the console binds loopback, and bad input is a one-line error."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

INVOKE = Path(sys.executable).with_name("invoke")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_console_prints_a_login_link_and_serves_loopback_only(repo_root: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(INVOKE), "console", "--port", str(port)], cwd=repo_root, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        link = re.search(r"open: (http://127\.0\.0\.1:(\d+)/login\?token=(\S+))", "".join(lines))
        assert link and int(link.group(2)) == port, lines
        token_file = Path(os.environ["CARAVAN_STATE_DIR"]) / "console" / "token"
        assert token_file.read_text().strip() == link.group(3)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the console did not answer"
                time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/plan").status_code == 401
            assert client.get(link.group(1).split(str(port), 1)[1]).status_code == 302
            assert client.get("/plan").status_code == 200  # the session cookie
        listening = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]
        assert {c.laddr.ip for c in listening if c.status == "LISTEN"} == {"127.0.0.1"}
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_bad_ports_are_one_line_errors(repo_root: Path) -> None:
    done = subprocess.run(
        [str(INVOKE), "console", "--port", "80"], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr.strip() == "error: port 80 is not a port from 1024 to 65535"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(INVOKE), "console", "--port", str(port)], cwd=repo_root, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and f"port {port} is taken by" in done.stderr
