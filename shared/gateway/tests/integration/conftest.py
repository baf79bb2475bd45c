"""Real processes on 127.0.0.1: test upstreams (aiohttp) and the gateway (python -m caravan_gateway)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from caravan_commons.identity import generate_identities
from caravan_gateway.auth import add_key

HERE = Path(__file__).parent
ISSUER = "https://issuer.caravan.test"
AUDIENCE = "caravan-gateway"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within  # a loaded machine may take a while to start a process
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "upstream_app.py"), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_port(self.port, self.proc, "upstream")

    def get(self, path: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())

    def stats(self) -> dict[str, int]:
        return self.get("/_stats")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Gateway:
    port: int
    proc: subprocess.Popen
    key: str
    state: Path
    env: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body=None, headers=None, key: str | None = "default", **kw):
        headers = dict(headers or {})
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key if key == 'default' else key}")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=kw.pop("timeout", 30))
        conn.request(method, path, body=body, headers=headers, **kw)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def json(self, method: str, path: str, **kw) -> tuple[http.client.HTTPResponse, dict]:
        response, data = self.request(method, path, **kw)
        return response, json.loads(data) if data else {}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    generate_identities(["gateway", "svc-a"], tmp_path / "identities")
    return tmp_path


@pytest.fixture
def jwt_keys(state_dir: Path) -> tuple[Ed25519PrivateKey, Path]:
    private = Ed25519PrivateKey.generate()
    public_path = state_dir / "jwt-public.pem"
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public_path


@pytest.fixture
def start_gateway(state_dir: Path, jwt_keys) -> Iterator:
    started: list[Gateway] = []

    def start(
        routes: dict[str, str], upstreams: dict[str, list[str]] | None = None, **settings: str
    ) -> Gateway:
        keys_file = state_dir / "api-keys.json"
        key = add_key(keys_file, "acme", ["operator"])
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
        env.update({
            "CARAVAN_PORT": str(port),
            "CARAVAN_GATEWAY_ROUTES": json.dumps(routes),
            "CARAVAN_API_KEYS_FILE": str(keys_file),
            "CARAVAN_JWT_KEY_FILE": str(jwt_keys[1]),
            "CARAVAN_JWT_ALGORITHMS": '["EdDSA"]',
            "CARAVAN_JWT_ISSUER": ISSUER,
            "CARAVAN_JWT_AUDIENCE": AUDIENCE,
            "CARAVAN_IDENTITY_KEY_FILE": str(state_dir / "identities" / "gateway.key"),
            "CARAVAN_TRACE_FILE": str(state_dir / "gateway.traces.jsonl"),
            "CARAVAN_LOG_FILE": str(state_dir / "gateway.log"),
            "CARAVAN_CIRCUIT_COOLDOWN_S": "1",
            # the suites' own load stays far from the production defaults' concern
            "CARAVAN_RATE_PER_SECOND": "100000",
            "CARAVAN_RATE_BURST": "100000",
        })  # fmt: skip
        if upstreams is not None:
            env["CARAVAN_DISCOVERY_BACKEND"] = "static"
        for service, urls in (upstreams or {}).items():
            env["CARAVAN_UPSTREAM_" + service.upper().replace("-", "_")] = ",".join(urls)
        env.update({"CARAVAN_" + k.upper(): v for k, v in settings.items()})
        proc = subprocess.Popen(
            [sys.executable, "-m", "caravan_gateway"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_for_port(port, proc, "gateway")
        except RuntimeError:
            proc.kill()  # never leave a gateway behind that the test could not use
            proc.wait()
            raise
        gw = Gateway(port, proc, key, state_dir, env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def upstreams() -> Iterator:
    made: list[Upstream] = []

    def make() -> Upstream:
        up = Upstream()
        made.append(up)
        return up

    yield make
    for up in made:
        up.kill()
