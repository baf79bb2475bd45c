"""What the security suite attacks with: a client bound to a loopback address of its own, raw
HTTP over a socket (for what httpx refuses to send), and direct calls to the services' ports."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from system import System

from caravan_commons.identity import Signer
from caravan_workspace.runtime import catalog

PROBLEM = "application/problem+json"
_addresses = itertools.count(2)


def next_address() -> str:
    """A fresh 127.0.x.y (x, y ≥ 1): every test gets a client address of its own."""
    n = next(_addresses)
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Attacker:
    def __init__(self, system: System, address: str) -> None:
        self.system = system
        self.address = address
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(local_address=address), timeout=30, base_url=system.gateway_url
        )

    @classmethod
    @contextmanager
    def fresh(cls, system: System) -> Iterator[Attacker]:
        attacker = cls(system, next_address())
        try:
            yield attacker
        finally:
            attacker.http.close()

    def key(self, customer: str) -> dict[str, str]:
        return {"X-API-Key": self.system.keys[customer]}

    def call(
        self, method: str, path: str, *, customer: str | None = "demo",
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        sent = {**(self.key(customer) if customer else {}), **(headers or {})}
        return self.http.request(method, path, headers=sent, **kwargs)

    def raw(self, data: bytes, *, read_for: float = 5.0) -> Answer:
        """Send ``data`` as it is and read the first answer (or what came before the close)."""
        return raw_exchange(self.system.gateway_url, data, source=self.address, read_for=read_for)


def raw_exchange(base_url: str, data: bytes, *, source: str = "127.0.0.1", read_for: float = 5.0) -> Answer:
    parts = urlsplit(base_url)
    with socket.create_connection(
        (parts.hostname, parts.port), timeout=read_for, source_address=(source, 0)
    ) as s:
        s.sendall(data)
        received = b""
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            answer = parse_answer(received)
            if answer is not None:
                return answer
    answer = parse_answer(received)
    if answer is None:
        raise AssertionError(f"no complete answer; got {received[:300]!r}")
    return answer


def parse_answer(data: bytes) -> Answer | None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return Answer(status, headers, rest[:length])


def assert_problem(
    response: httpx.Response | Answer, status: int, *, slug: str | None = None
) -> dict[str, Any]:
    """``response`` is the RFC 9457 problem document of ``status`` (and of type ``slug``)."""
    shown = response.text if isinstance(response, httpx.Response) else response.body[:500]
    assert status_of(response) == status, (status_of(response), shown)
    headers = response.headers
    assert headers["content-type"].startswith(PROBLEM), headers
    document = response.json()
    assert document["status"] == status
    if slug is not None:
        assert document["type"].endswith("/" + slug) or document["type"] == slug, document
    return document


def status_of(response: httpx.Response | Answer) -> int:
    return response.status_code if isinstance(response, httpx.Response) else response.status


# ------------------------------------------------------------------ the services, directly


def instance_url(system: System, service: str) -> str:
    instance = catalog.ready_instances(system.state_dir, service)[0]
    return f"http://{instance.host}:{instance.port}"


def gateway_signer(system: System) -> Signer:
    """The gateway's own signer, from its provisioned key: it mints exactly the assertions the
    gateway puts on a customer's request — what an attacker reading loopback traffic would hold."""
    return Signer.from_file("gateway", system.runtime.identity_dir / "gateway.key")


def state_files(system: System, folder: str) -> list[Path]:
    return sorted(p for p in (system.state_dir / folder).rglob("*") if p.is_file())
