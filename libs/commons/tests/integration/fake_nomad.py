"""A fake Nomad agent on 127.0.0.1 implementing the documented native-service-discovery contract.

Not Nomad: only what the adapter uses, as the Nomad API docs and its Go ``api`` package describe it:

- ``GET /v1/service/:name[?namespace=]`` → the registrations, **unfiltered by health** (as Nomad):
  ``[{ID, ServiceName, Namespace, NodeID, Datacenter, JobID, AllocID, Tags, Address, Port,
  CreateIndex, ModifyIndex}]``, with ``X-Nomad-Index``;
- ``GET /v1/client/allocation/:alloc_id/checks`` → ``{check_id: {ID, Check, Group, Mode, Output,
  Service, Task, Status ("success"|"failure"|"pending"), StatusCode, Timestamp}}``; an unknown
  allocation → 404 ``Unknown allocation``;
- ACL: with ``required_token`` set, a request without that X-Nomad-Token gets 403;
- optional TLS (``ssl_context``) to check that the client verifies the agent's certificate.

The test sets the state directly: ``add`` a registration, ``set_check`` a check's status,
``remove_alloc``. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    token: str | None


class FakeNomad:
    def __init__(
        self, *, required_token: str | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.required_token = required_token
        self.ssl_context = ssl_context
        self.index = 100
        self.registrations: list[dict[str, Any]] = []
        self.checks: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state (test side)
    def add(
        self,
        service: str,
        alloc_id: str,
        port: int,
        *,
        namespace: str = "default",
        address: str = "127.0.0.1",
        tags: list[str] | None = None,
    ) -> str:
        with self._lock:
            self.index += 1
            reg_id = f"_nomad-task-{alloc_id}-web-{service}-http"
            self.registrations.append(
                {
                    "ID": reg_id,
                    "ServiceName": service,
                    "Namespace": namespace,
                    "NodeID": "node-1",
                    "Datacenter": "dc1",
                    "JobID": service,
                    "AllocID": alloc_id,
                    "Tags": tags or [],
                    "Address": address,
                    "Port": port,
                    "CreateIndex": self.index,
                    "ModifyIndex": self.index,
                }
            )
            self.checks.setdefault(alloc_id, {})
            return reg_id

    def set_check(
        self, alloc_id: str, service: str, status: str, *, name: str = "ready", mode: str = "healthiness"
    ) -> None:
        with self._lock:
            check_id = f"{alloc_id[:8]}-{service}-{name}"
            self.checks.setdefault(alloc_id, {})[check_id] = {
                "ID": check_id,
                "Check": name,
                "Group": "web",
                "Mode": mode,
                "Output": "nomad: http ok" if status == "success" else "nomad: connection refused",
                "Service": service,
                "Task": "",
                "Status": status,
                "StatusCode": 200 if status == "success" else 0,
                "Timestamp": int(time.time()),
            }

    def remove_alloc(self, alloc_id: str) -> None:
        with self._lock:
            self.checks.pop(alloc_id, None)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeNomad:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="fake-nomad")
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("fake nomad did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.run_until_complete(self._setup())
        ready.set()
        loop.run_forever()
        assert self._runner is not None
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    async def _setup(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/service/{name}", self._service)
        app.router.add_get("/v1/client/allocation/{alloc}/checks", self._checks)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self._runner.addresses[0][1]}"

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._loop and self._thread and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(20)

    def __enter__(self) -> FakeNomad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = request.headers.get("X-Nomad-Token")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), token))
        if self.required_token is not None and token != self.required_token:
            return web.Response(status=403, text="Permission denied")
        return await handler(request)

    async def _service(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        namespace = request.query.get("namespace", "default")
        with self._lock:
            found = [
                r for r in self.registrations if r["ServiceName"] == name and r["Namespace"] == namespace
            ]
            index = self.index
        return web.json_response(found, headers={"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true"})

    async def _checks(self, request: web.Request) -> web.Response:
        alloc = request.match_info["alloc"]
        with self._lock:
            checks = self.checks.get(alloc)
        if checks is None:
            return web.Response(status=404, text=f'Unknown allocation "{alloc}"')
        return web.json_response(checks)
