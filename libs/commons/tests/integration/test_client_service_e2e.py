"""ServiceClient against a real commons service process (create_app under granian, SQLite file):
problem+json round trip through the real mapping, Idempotency-Key over HTTP, deadline middleware,
readiness following migrations.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from db_fixtures import migrate
from upstream_server import Upstream, ok_json, serve, unused_port

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery import StaticResolver
from caravan_commons.errors import (
    DeadlineExceededError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)

SERVICE = Path(__file__).with_name("client_target_service.py")


class Service:
    def __init__(self, process: subprocess.Popen[bytes], port: int, markers: Path) -> None:
        self.process, self.port, self.markers = process, port, markers
        self.url = f"http://127.0.0.1:{port}"

    async def get(self, path: str, **headers: str) -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers=headers) as answer,
        ):
            return answer.status, await answer.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def start_service(tmp_path: Path, database_url: str, **extra_env: str) -> Service:
    port = unused_port()
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {
        **os.environ,
        "CARAVAN_SERVICE_NAME": "client-target",
        "CARAVAN_PORT": str(port),
        "CARAVAN_DATABASE_URL": database_url,
        "CARAVAN_LOG_FILE": str(tmp_path / "service.log"),
        "CARAVAN_TRACE_FILE": str(tmp_path / "service.traces.jsonl"),
        "MARKER_DIR": str(markers),
        **extra_env,
    }
    process = subprocess.Popen([sys.executable, str(SERVICE)], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    service = Service(process, port, markers)
    for _ in range(300):  # up to ~30 s for the process to listen
        if process.poll() is not None:
            raise AssertionError(
                f"service exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            status, _ = await service.get("/health/live")
            if status == 200:
                return service
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    service.stop()
    raise AssertionError("service did not start listening")


async def wait_for_file(path: Path) -> str:
    for _ in range(200):
        if path.exists():
            return path.read_text()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path.name} never appeared")


# One service process (and one echo upstream) for the whole module: starting is the slow part.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo() -> AsyncIterator[Upstream]:
    async with serve(ok_json) as upstream:
        yield upstream


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory, echo: Upstream) -> AsyncIterator[Service]:
    tmp_path = tmp_path_factory.mktemp("client-target")
    database_url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    migrate(database_url, tmp_path)
    running = await start_service(tmp_path, database_url, CARAVAN_UPSTREAM_ECHO=echo.url)
    try:
        yield running
    finally:
        running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(service: Service) -> AsyncIterator[ServiceClient]:
    config = ClientConfig(backoff_base=0.001, backoff_cap=0.002)
    async with ServiceClient(StaticResolver({"catalog": [service.url]}), config) as c:
        yield c


async def test_readiness_passes_once_migrated(service: Service) -> None:
    status, body = await service.get("/health/ready")
    assert status == 200, body


async def test_readiness_fails_without_migrations(tmp_path: Path) -> None:
    running = await start_service(tmp_path, f"sqlite:///{tmp_path / 'unmigrated.sqlite3'}")
    try:
        status, body = await running.get("/health/ready")
    finally:
        running.stop()
    assert status == 503 and b"database" in body


async def test_problem_json_from_the_real_mapping_round_trips(client: ServiceClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.get("catalog", "/products/SKU-9")
    error = info.value
    assert error.detail == "no product 'SKU-9'"
    assert error.extensions["sku"] == "SKU-9" and error.extensions["hint"] == "check the catalogue"
    assert error.problem_instance == "/products/SKU-9"  # type: ignore[attr-defined]


async def test_idempotency_key_over_http(client: ServiceClient) -> None:
    with pytest.raises(ValidationError, match="requires an Idempotency-Key"):
        await client.post("catalog", "/reservations", json={"sku": "A", "quantity": 1})

    first = await client.post(
        "catalog", "/reservations", json={"sku": "A", "quantity": 2}, idempotency_key="o-1"
    )
    again = await client.post(
        "catalog", "/reservations", json={"quantity": 2, "sku": "A"}, idempotency_key="o-1"
    )
    assert first.status == again.status == 201
    assert first.json() == again.json()  # the stored answer, same reservation id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert (await client.get("catalog", "/reservations/count")).json() == {"n": 1}

    with pytest.raises(UnprocessableError):
        await client.post("catalog", "/reservations", json={"sku": "A", "quantity": 3}, idempotency_key="o-1")
    assert (await client.get("catalog", "/reservations/count")).json() == {"n": 1}


async def test_deadline_propagates_and_the_server_cancels_its_work(
    client: ServiceClient, service: Service
) -> None:
    with pytest.raises(DeadlineExceededError):
        await client.get("catalog", "/slow", timeout=0.3)
    assert 0 < int(await wait_for_file(service.markers / "slow-started")) <= 300
    assert await wait_for_file(service.markers / "slow-cancelled") == "cancelled"


async def test_a_malformed_deadline_header_is_a_400_problem(service: Service) -> None:
    status, body = await service.get("/products/x", **{"X-Request-Timeout-Ms": "soon"})
    document = json.loads(body)
    assert status == 400 and document["type"].endswith("/validation-error")
    assert "X-Request-Timeout-Ms" in document["detail"]


async def test_deadline_and_trace_travel_through_a_service_to_its_upstream(
    service: Service, echo: Upstream
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    status, _ = await service.get(
        "/relay",
        **{"X-Request-Timeout-Ms": "4000", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert status == 200
    hop = echo.seen[0].headers
    assert 0 < int(hop["X-Request-Timeout-Ms"]) <= 4000  # what was left of the caller's deadline
    assert hop["traceparent"].split("-")[1] == trace_id  # the same trace, one hop further
    assert hop["traceparent"].split("-")[2] != "00f067aa0ba902b7"  # a new (client) span as parent
