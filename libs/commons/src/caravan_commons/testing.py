"""Helpers for a service's own end-to-end tests: its entry point as a real process on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def module_environment(cwd: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without CARAVAN_* settings, with tracing off and logs in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update({"CARAVAN_TRACE_EXPORTER": "none", "CARAVAN_LOG_FILE": str(cwd / "service.log")})
    env.update(extra or {})
    return env


@dataclass
class Served:
    port: int
    process: subprocess.Popen[str]
    returncode: int | None = field(default=None)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return json.loads(response.read())


@contextmanager
def served(
    module: str, cwd: Path, env: Mapping[str, str] | None = None, *, limit: float = 90.0
) -> Iterator[Served]:
    """Run ``python -m module`` on a free loopback port until it answers /health/live; on exit send
    SIGTERM and record its exit code in ``returncode`` (it is killed if it does not stop)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env=module_environment(cwd, {"CARAVAN_PORT": str(port), **(env or {})}),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    handle = Served(port, process)
    try:
        deadline = time.monotonic() + limit
        while True:
            try:
                handle.get("/health/live")
                break
            except (urllib.error.URLError, OSError) as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read() if process.stderr and process.poll() is not None else ""
                    raise AssertionError(f"{module} did not serve on port {port}: {err or exc}") from exc
                time.sleep(0.05)
        yield handle
        process.send_signal(signal.SIGTERM)
        handle.returncode = process.wait(timeout=limit)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_module(
    module: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` to completion (e.g. to see a bad setting refused)."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env=module_environment(cwd, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class FuzzReport:
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        """schemathesis exited 0 and said so (it exits 0 on nothing to test, too)."""
        return self.returncode == 0 and "No issues found" in self.output

    def operations(self) -> int:
        """How many API operations schemathesis tested (its summary's ``Tested: N``)."""
        for line in self.output.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "Tested:" and words[1].isdigit():
                return int(words[1])
        return 0


def fuzz_openapi(
    base_url: str,
    workdir: Path,
    *,
    max_examples: int = 100,
    headers: Mapping[str, str] | None = None,
    seed: int = 1,
    timeout: float = 1800.0,
    document: Path | None = None,
) -> FuzzReport:
    """Run the schemathesis CLI against ``base_url``'s OpenAPI document (or ``document``, a file,
    sent to ``base_url``) with every check on and ``max_examples`` examples per operation (the
    house bar for a service's API: 0 failures)."""
    executable = Path(sys.executable).with_name("schemathesis")
    source = [str(document), "--url", base_url] if document else [f"{base_url}/schema/openapi.json"]
    command = [
        str(executable), "run", *source, "--checks", "all",
        "--max-examples", str(max_examples), "--seed", str(seed), "--no-color",
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False)
    return FuzzReport(done.returncode, done.stdout + done.stderr)


@dataclass(frozen=True)
class RuntimeAccess:
    """What a service's ``tests/gateway`` suite gets from the workspace's "API working through the
    gateway" gate (environment variables, set by the gate): the gateway's address, API keys for an
    operator and two plain customers, the identity keys, and discovery — to act as svc-b where only
    svc-b may call (security groups)."""

    gateway_url: str
    operator_key: str
    customer_key: str
    other_customer_key: str
    identity_dir: Path
    environ: Mapping[str, str]

    VARIABLES = (
        "CARAVAN_GATEWAY_URL",
        "CARAVAN_GATEWAY_OPERATOR_KEY_FILE",
        "CARAVAN_GATEWAY_CUSTOMER_KEY_FILE",
        "CARAVAN_GATEWAY_OTHER_CUSTOMER_KEY_FILE",
        "CARAVAN_IDENTITY_DIR",
        "CARAVAN_DISCOVERY_BACKEND",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeAccess:
        env = os.environ if environ is None else environ
        missing = [name for name in cls.VARIABLES if not env.get(name)]
        if missing:
            raise RuntimeError(
                f"{', '.join(missing)} not set: these tests run inside the stage gate "
                "(invoke stage N), against the running system"
            )

        def key(name: str) -> str:
            return Path(env[name]).read_text().strip()

        return cls(
            gateway_url=env["CARAVAN_GATEWAY_URL"].rstrip("/"),
            operator_key=key("CARAVAN_GATEWAY_OPERATOR_KEY_FILE"),
            customer_key=key("CARAVAN_GATEWAY_CUSTOMER_KEY_FILE"),
            other_customer_key=key("CARAVAN_GATEWAY_OTHER_CUSTOMER_KEY_FILE"),
            identity_dir=Path(env["CARAVAN_IDENTITY_DIR"]),
            environ=dict(env),
        )

    def api(self, service: str, path: str) -> str:
        """The gateway URL of ``path`` on ``service`` (``/api/<service><path>``)."""
        return f"{self.gateway_url}/api/{service}{path}"

    @staticmethod
    def key_header(key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    def signed_as(self, caller: str, audience: str, method: str, path: str) -> dict[str, str]:
        """Identity headers of ``caller`` for one direct call ``method path`` to ``audience`` (an
        assertion is bound to its request and accepted once)."""
        from caravan_commons.identity import Signer

        return Signer.from_file(caller, self.identity_dir / f"{caller}.key").headers_for(
            audience, method, path.partition("?")[0]
        )

    def instance_url(self, service: str) -> str:
        """The base URL of one ready instance of ``service``, from discovery."""
        import asyncio

        from caravan_commons.discovery_config import resolver_from_env

        instances = asyncio.run(resolver_from_env(self.environ).resolve(service))
        if not instances:
            raise RuntimeError(f"discovery lists no ready instance of {service}")
        return instances[0].base_url
