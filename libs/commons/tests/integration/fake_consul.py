"""A fake Consul agent on 127.0.0.1 implementing the documented HTTP contract we rely on — strictly.

Not Consul: it implements only what ../shared/reference/nomad-consul.md and the Consul API docs
describe for the endpoints the adapter uses, and it is as strict as Consul where that matters:

- ``PUT /v1/agent/service/register``: field names match case-insensitively (and snake_case is
  translated, as Consul does); an unknown field → 400 ``Request decode failed``; a missing Name,
  a wrongly typed value, a bad duration or an HTTP check without Interval → 400. The HTTP check
  really runs (loopback URLs only) every Interval; an instance starts critical, becomes passing
  on a 2xx, and is deregistered after DeregisterCriticalServiceAfter spent critical.
- ``PUT /v1/agent/service/deregister/:id`` (404 for an unknown id).
- ``GET /v1/health/service/:name`` with ``passing``, blocking queries (``index`` + ``wait``, held
  until the index moves past it or wait plus up to wait/16 of jitter elapses) and X-Consul-Index.
- ``PUT|GET|DELETE /v1/connect/intentions/exact?source=&destination=`` (name-based intentions).
- ACL: when ``required_token`` is set, a request without that X-Consul-Token gets 403.

Test controls (thread-safe): ``set_index`` (make the index go backwards), ``fail_next`` (answer
500 to the next health queries), ``set_check_status``; every request is recorded in ``requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

SERVICE_FIELDS = {
    "kind", "id", "name", "tags", "port", "address", "taggedaddresses", "enabletagoverride", "meta",
    "weights", "check", "checks", "proxy", "connect", "namespace", "partition", "locality", "socketpath",
}  # fmt: skip
CHECK_FIELDS = {
    "checkid", "id", "name", "args", "scriptargs", "dockercontainerid", "shell", "interval", "timeout",
    "ttl", "http", "header", "method", "body", "disableredirects", "tcp", "tcpusetls", "udp", "grpc",
    "grpcusetls", "h2ping", "h2pingusetls", "osservice", "aliasnode", "aliasservice", "status", "notes",
    "tlsservername", "tlsskipverify", "deregistercriticalserviceafter", "successbeforepassing",
    "failuresbeforewarning", "failuresbeforecritical", "outputmaxsize",
}  # fmt: skip
INTENTION_FIELDS = {"sourcetype", "action", "description", "meta", "permissions"}

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"time: invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", text))


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


BODY = web.RequestKey("body", object)


class DecodeError(ValueError):
    pass


def _decode_object(raw: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError(f"* '{where}' expected a map, got '{type(raw).__name__}'")
    out: dict[str, Any] = {}
    bad = sorted(k for k in raw if _norm(k) not in allowed)
    if bad:
        raise DecodeError(f"* '{where}' has invalid keys: {', '.join(bad)}")
    for key, value in raw.items():
        out[_norm(key)] = value
    return out


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    token: str | None
    body: Any


@dataclass
class Registration:
    id: str
    name: str
    address: str
    port: int
    tags: list[str]
    meta: dict[str, str]
    check_http: str | None
    interval: float
    timeout: float
    deregister_after: float | None
    status: str = "critical"
    critical_since: float = field(default_factory=time.monotonic)
    output: str = ""


class FakeConsul:
    def __init__(self, *, required_token: str | None = None, jitter: str = "random") -> None:
        self.required_token = required_token
        self.jitter = jitter  # "random" (0..wait/16) or "max" (always wait/16)
        self.index = 10
        self.services: dict[str, Registration] = {}
        self.intentions: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self._fail_next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._changed: asyncio.Event | None = None
        self._checkers: dict[str, asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle (own thread)
    def start(self) -> FakeConsul:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="fake-consul")
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("fake consul did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.run_until_complete(self._setup())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._teardown())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    async def _setup(self) -> None:
        self._changed = asyncio.Event()
        self._http = aiohttp.ClientSession()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_put("/v1/agent/service/register", self._register)
        app.router.add_put("/v1/agent/service/deregister/{id}", self._deregister)
        app.router.add_get("/v1/health/service/{name}", self._health)
        app.router.add_route("*", "/v1/connect/intentions/exact", self._intention_exact)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _teardown(self) -> None:
        for task in self._checkers.values():
            task.cancel()
        if self._http:
            await self._http.close()
        if self._runner:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._loop and self._thread and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(20)

    def __enter__(self) -> FakeConsul:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ------------------------------------------------------------------ test controls
    def set_index(self, index: int) -> None:
        """Set the raft index (lower = the index goes backwards, as after a snapshot restore)."""
        self._call(self._set_index, index)

    def fail_next(self, count: int) -> None:
        self._call(setattr, self, "_fail_next", count)

    def set_check_status(self, service_id: str, status: str) -> None:
        self._call(self._set_status, service_id, status, "set by the test")

    def health_requests(self, name: str) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path == f"/v1/health/service/{name}"]

    # ------------------------------------------------------------------ state changes
    def _set_index(self, index: int) -> None:
        self.index = index
        self._notify()

    def _bump(self) -> None:
        self.index += 1
        self._notify()

    def _notify(self) -> None:
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    def _set_status(self, service_id: str, status: str, output: str) -> None:
        reg = self.services.get(service_id)
        if reg is None or reg.status == status:
            return
        if status == "critical":
            reg.critical_since = time.monotonic()
        reg.status, reg.output = status, output
        self._bump()

    # ------------------------------------------------------------------ HTTP
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        token = request.headers.get("X-Consul-Token")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), token, body))
        if self._fail_next > 0 and request.path.startswith("/v1/health/"):
            self._fail_next -= 1
            return web.Response(status=500, text="rpc error: No cluster leader")
        if self.required_token is not None and token != self.required_token:
            return web.Response(status=403, text="Permission denied: token not found")
        request[BODY] = body
        return await handler(request)

    async def _register(self, request: web.Request) -> web.Response:
        try:
            svc = _decode_object(request[BODY], SERVICE_FIELDS, "")
            checks_raw = []
            if svc.get("check") is not None:
                checks_raw.append(("Check", svc["check"]))
            for i, c in enumerate(svc.get("checks") or []):
                checks_raw.append((f"Checks[{i}]", c))
            checks = [_decode_object(c, CHECK_FIELDS, where) for where, c in checks_raw]
            name, port = svc.get("name"), svc.get("port", 0)
            if not isinstance(port, int) or isinstance(port, bool):
                raise DecodeError(f"* 'Port' expected type 'int', got '{type(port).__name__}'")
            tags, meta = svc.get("tags") or [], svc.get("meta") or {}
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise DecodeError("* 'Tags' expected a list of strings")
            if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
                raise DecodeError("* 'Meta' expected a map of strings")
        except DecodeError as exc:
            return web.Response(status=400, text=f"Request decode failed: 1 error(s) decoding:\n\n{exc}")
        if not name or not isinstance(name, str):
            return web.Response(status=400, text="Invalid Service Meta: Missing service name")
        if len(checks) > 1:
            return web.Response(status=400, text="Invalid check: the fake supports one check per service")
        check_http, interval, timeout, deregister = None, 0.0, 10.0, None
        if checks:
            check = checks[0]
            try:
                interval = parse_duration(check["interval"]) if "interval" in check else 0.0
                timeout = parse_duration(check["timeout"]) if "timeout" in check else 10.0
                key = "deregistercriticalserviceafter"
                deregister = parse_duration(check[key]) if check.get(key) else None
            except ValueError as exc:
                return web.Response(status=400, text=f"Request decode failed: {exc}")
            check_http = check.get("http")
            if check_http is None:
                return web.Response(status=400, text="Invalid check: the fake implements HTTP checks only")
            if interval <= 0:
                return web.Response(
                    status=400,
                    text="Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks",
                )
        service_id = svc.get("id") or name
        self._stop_checker(service_id)
        reg = Registration(
            id=service_id,
            name=name,
            address=svc.get("address") or "",
            port=port,
            tags=list(tags),
            meta=dict(meta),
            check_http=check_http,
            interval=interval,
            timeout=timeout,
            deregister_after=deregister,
            status="critical" if check_http else "passing",
        )
        self.services[service_id] = reg
        self._bump()
        if check_http:
            self._checkers[service_id] = asyncio.create_task(self._run_check(reg))
        return web.Response(status=200)

    def _stop_checker(self, service_id: str) -> None:
        task = self._checkers.pop(service_id, None)
        if task is not None:
            task.cancel()

    async def _run_check(self, reg: Registration) -> None:
        assert self._http is not None
        url = reg.check_http or ""
        host = urlsplit(url).hostname or ""
        while self.services.get(reg.id) is reg:
            try:
                loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                self._set_status(reg.id, "critical", "the fake probes loopback addresses only")
            else:
                try:
                    timeout = aiohttp.ClientTimeout(total=reg.timeout)
                    async with self._http.get(url, timeout=timeout) as resp:
                        code = resp.status
                    status = "passing" if 200 <= code < 300 else ("warning" if code == 429 else "critical")
                    self._set_status(reg.id, status, f"HTTP GET {url}: {code}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self._set_status(reg.id, "critical", f"HTTP GET {url}: {exc!r}")
            if (
                reg.deregister_after is not None
                and reg.status == "critical"
                and time.monotonic() - reg.critical_since >= reg.deregister_after
            ):
                self.services.pop(reg.id, None)
                self._checkers.pop(reg.id, None)
                self._bump()
                return
            await asyncio.sleep(reg.interval)

    async def _deregister(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        if service_id not in self.services:
            return web.Response(
                status=404,
                text=f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
                "not the service name.",
            )
        self._stop_checker(service_id)
        del self.services[service_id]
        self._bump()
        return web.Response(status=200)

    def _health_entries(self, name: str, passing: bool) -> list[dict[str, Any]]:
        node = {"ID": "0c2b6b4e-fake", "Node": "fake-node", "Address": "127.0.0.1", "Datacenter": "dc1"}
        entries = []
        for reg in self.services.values():
            if reg.name != name or (passing and reg.status != "passing"):
                continue
            checks = [
                {
                    "Node": "fake-node",
                    "CheckID": "serfHealth",
                    "Name": "Serf Health Status",
                    "Status": "passing",
                }
            ]
            if reg.check_http:
                checks.append(
                    {
                        "Node": "fake-node",
                        "CheckID": f"service:{reg.id}",
                        "Name": f"Service '{reg.name}' check",
                        "Status": reg.status,
                        "Output": reg.output,
                        "ServiceID": reg.id,
                        "ServiceName": reg.name,
                        "Type": "http",
                    }
                )
            service = {
                "ID": reg.id,
                "Service": reg.name,
                "Tags": reg.tags,
                "Address": reg.address,
                "Meta": reg.meta,
                "Port": reg.port,
            }
            entries.append({"Node": node, "Service": service, "Checks": checks})
        return entries

    async def _health(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        query = request.query
        if "index" in query:
            try:
                wanted = int(query["index"])
                wait = min(parse_duration(query["wait"]), 600.0) if "wait" in query else 300.0
            except ValueError as exc:
                return web.Response(status=400, text=f"Invalid blocking query: {exc}")
            jitter = wait / 16 if self.jitter == "max" else random.uniform(0, wait / 16)
            deadline = asyncio.get_running_loop().time() + wait + jitter
            while self.index <= wanted:
                assert self._changed is not None
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        passing = "passing" in query and query["passing"].lower() not in ("0", "false")
        body = self._health_entries(name, passing)
        return web.json_response(
            body, headers={"X-Consul-Index": str(self.index), "X-Consul-KnownLeader": "true"}
        )

    async def _intention_exact(self, request: web.Request) -> web.Response:
        source, destination = request.query.get("source"), request.query.get("destination")
        if not source:
            return web.Response(status=400, text="required query parameter 'source' not set")
        if not destination:
            return web.Response(status=400, text="required query parameter 'destination' not set")
        key = (source, destination)
        if request.method == "GET":
            found = self.intentions.get(key)
            if found is None:
                return web.Response(status=404, text="Intention not found")
            return web.json_response(found)
        if request.method == "DELETE":
            self.intentions.pop(key, None)
            self._bump()
            return web.json_response(True)
        if request.method != "PUT":
            return web.Response(status=405)
        try:
            body = _decode_object(request[BODY] or {}, INTENTION_FIELDS, "")
        except DecodeError as exc:
            return web.Response(status=400, text=f"Request decode failed: 1 error(s) decoding:\n\n{exc}")
        action = body.get("action")
        if body.get("permissions") is None and action not in ("allow", "deny"):
            return web.Response(status=400, text="Intention action must be set to 'allow' or 'deny'")
        self.intentions[key] = {
            "ID": "",
            "SourceName": source,
            "DestinationName": destination,
            "SourceType": body.get("sourcetype", "consul"),
            "Action": action,
            "Description": body.get("description", ""),
            "Meta": body.get("meta") or {},
        }
        self._bump()
        return web.json_response(True)
