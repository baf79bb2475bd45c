"""Fake Nomad and Consul agents on 127.0.0.1 (real HTTP servers) implementing — strictly — the
documented HTTP contracts `invoke deploy --target nomad` relies on. Not Nomad, not Consul: only
what the API docs and the api structs say for these endpoints.

Nomad (``/v1``):
- ``POST /v1/validate/job`` → **200** with ``ValidationErrors`` (read the body): missing task
  groups, missing driver, a port label no network declares, an http check without path, auto
  promote without canaries, min healthy time not below the deadline, count above the scaling max.
- ``POST /v1/job/:id/plan`` → ``Diff`` (Added / Edited / None with the changed fields),
  ``Annotations``; ``POST /v1/job/:id`` registers; ``GET /v1/job/:id``, ``/deployment``,
  ``/allocations``.
- Bodies: durations must be integer nanoseconds (a string → 400 as Go's decoder answers), keys
  match case-insensitively, **unknown keys are dropped silently** (recorded in ``dropped``).
- Each registered version gets a deployment: ``running``, then after ``settle_polls`` reads
  ``successful`` — and its instances are registered in the fake Consul, passing — or, for a job in
  ``failing``, ``failed`` with allocations whose task events say why; for a job in
  ``never_passing`` the deployment succeeds but its Consul checks stay critical.

Consul: ``PUT /v1/config`` (service-defaults, service-intentions; unknown fields → 400),
``GET /v1/config/:kind/:name``, ``GET /v1/health/service/:name[?passing]`` with X-Consul-Index.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Nomad api struct keys (lower-cased: the decoder matches case-insensitively).
JOB_KEYS = {
    "id",
    "name",
    "type",
    "namespace",
    "region",
    "datacenters",
    "meta",
    "update",
    "taskgroups",
    "priority",
    "ui",
    "constraints",
    "affinities",
    "spreads",
    "nodepool",
    "allatonce",
    "periodic",
    "parameterized",
}
GROUP_KEYS = {
    "name",
    "count",
    "networks",
    "services",
    "restartpolicy",
    "reschedulepolicy",
    "scaling",
    "tasks",
    "meta",
    "update",
    "shutdowndelay",
    "constraints",
    "volumes",
    "ephemeraldisk",
    "migrate",
    "spreads",
}
TASK_KEYS = {
    "name",
    "driver",
    "config",
    "env",
    "resources",
    "killtimeout",
    "killsignal",
    "templates",
    "meta",
    "shutdowndelay",
    "user",
    "services",
    "artifacts",
    "vault",
    "lifecycle",
    "logconfig",
    "leader",
}
DURATIONS = {"killtimeout", "shutdowndelay", "interval", "timeout", "delay", "maxdelay", "grace",
             "minhealthytime", "healthydeadline", "progressdeadline", "stagger"}  # fmt: skip
CONFIG_FIELDS = {
    "service-defaults": {"kind", "name", "protocol", "meta", "namespace", "partition", "mode",
                         "transparentproxy",
                         "upstreamconfig", "expose", "meshgateway", "externalsni", "mutualtlsmode"},
    "service-intentions": {"kind", "name", "sources", "meta", "namespace", "partition", "jwt"},
}  # fmt: skip
SOURCE_FIELDS = {"name", "action", "permissions", "description", "type", "namespace", "partition", "peer",
                 "precedence", "samenessgroup"}  # fmt: skip


class BadRequest(Exception):
    pass


def _lower(d: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in d.items()}


class FakeNomad:
    def __init__(self, consul: FakeConsul, *, settle_polls: int = 2) -> None:
        self.consul = consul
        self.settle_polls = settle_polls
        self.failing: set[str] = set()
        self.never_passing: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.allocs: dict[str, list[dict[str, Any]]] = {}
        self.dropped: list[str] = []
        self.log: list[str] = []  # "register svc-a", "plan svc-a", ... in order
        self.lock = threading.Lock()

    # -- decoding like Nomad's: case-insensitive, unknown keys dropped, durations as integers
    def decode_job(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict) or not isinstance(raw.get("Job"), dict):
            raise BadRequest("Request decode failed: missing Job")
        job = self._strict(raw["Job"], JOB_KEYS, "Job")
        groups = []
        for g in job.get("taskgroups") or []:
            group = self._strict(g, GROUP_KEYS, "TaskGroup")
            group["tasks"] = [self._strict(t, TASK_KEYS, "Task") for t in group.get("tasks") or []]
            groups.append(group)
        job["taskgroups"] = groups
        self._durations(raw["Job"], "Job")
        return job

    def _strict(self, obj: dict[str, Any], keys: set[str], where: str) -> dict[str, Any]:
        out = {}
        for k, v in obj.items():
            if k.lower() in keys:
                out[k.lower()] = v
            else:
                self.dropped.append(f"{where}.{k}")  # Nomad drops it without a word
        return out

    def _durations(self, node: Any, path: str) -> None:
        if isinstance(node, list):
            for x in node:
                self._durations(x, path)
        elif isinstance(node, dict):
            for k, v in node.items():
                if k.lower() in ("config", "env", "meta", "policy"):
                    continue
                if k.lower() in DURATIONS and not (isinstance(v, int) and not isinstance(v, bool)):
                    raise BadRequest(f"json: cannot unmarshal {type(v).__name__} into Go struct field "
                                     f"{path}.{k} of type time.Duration")  # fmt: skip
                self._durations(v, f"{path}.{k}")

    def validation_errors(self, job: dict[str, Any]) -> list[str]:
        errors = []
        if not job.get("id"):
            errors.append("Missing job ID")
        if not job.get("taskgroups"):
            errors.append("Missing job task groups")
        update = _lower(job.get("update") or {})
        if update.get("autopromote") and not update.get("canary"):
            errors.append("Auto Promote requires a Canary count greater than zero")
        if update.get("minhealthytime", 0) >= update.get("healthydeadline", 1 << 62):
            errors.append("Minimum healthy time must be less than healthy deadline")
        for g in job.get("taskgroups", []):
            ports = {
                _lower(p).get("label")
                for n in g.get("networks") or []
                for p in _lower(n).get("dynamicports") or []
            }
            for s in map(_lower, g.get("services") or []):
                label = s.get("portlabel")
                if label and label not in ports and not (s.get("connect") and str(label).isdigit()):
                    errors.append(
                        f'port label "{label}" referenced by services [{s.get("name")}] does not exist'
                    )
                for c in map(_lower, s.get("checks") or []):
                    if c.get("type") == "http" and not c.get("path"):
                        errors.append("http type must have http path")
            scaling = _lower(g.get("scaling") or {})
            if scaling and g.get("count", 1) > scaling.get("max", 1 << 30):
                errors.append("task group count must not be greater than maximum count in scaling policy")
            for t in g.get("tasks", []):
                if not t.get("name"):
                    errors.append("Missing task name")
                if not t.get("driver"):
                    errors.append("Missing task driver")
        return errors

    # -- behaviour
    def plan(self, job_id: str, job: dict[str, Any]) -> dict[str, Any]:
        old = self.jobs.get(job_id)
        count = job["taskgroups"][0].get("count", 1) if job["taskgroups"] else 0
        if old is None:
            diff = {"Type": "Added", "ID": job_id, "Fields": [], "Objects": [],
                    "TaskGroups": [{"Type": "Added", "Name": g["name"],
                                    "Updates": {"create": g.get("count", 1)}}
                                   for g in job["taskgroups"]]}  # fmt: skip
        elif old == job:
            diff = {"Type": "None", "ID": job_id, "Fields": [], "Objects": [], "TaskGroups": []}
        else:
            old_count = old["taskgroups"][0].get("count", 1)
            fields = [{"Type": "Edited", "Name": "Count", "Old": str(old_count), "New": str(count)}] \
                if old_count != count else []  # fmt: skip
            diff = {"Type": "Edited", "ID": job_id, "Fields": [], "Objects": [],
                    "TaskGroups": [{"Type": "Edited", "Name": job["taskgroups"][0]["name"], "Fields": fields,
                                    "Updates": {"create/destroy update": 1}}]}  # fmt: skip
        return {"Diff": diff, "Annotations": {"DesiredTGUpdates": {}}, "FailedTGAllocs": None,
                "JobModifyIndex": self.versions.get(job_id, 0)}  # fmt: skip

    def register(self, job_id: str, job: dict[str, Any]) -> dict[str, Any]:
        if job.get("id") != job_id:
            raise BadRequest("Job ID does not match request path")
        changed = self.jobs.get(job_id) != job
        self.jobs[job_id] = job
        if changed:
            self.versions[job_id] = self.versions.get(job_id, -1) + 1
            dep_id = str(uuid.uuid4())
            self.deployments[job_id] = {"ID": dep_id, "JobID": job_id, "JobVersion": self.versions[job_id],
                                        "Status": "running",
                                        "StatusDescription": "Deployment is running"}  # fmt: skip
            self.polls[job_id] = 0
            self.allocs[job_id] = [{"ID": str(uuid.uuid4()), "DeploymentID": dep_id,
                                    "ClientStatus": "running",
                                    "TaskStates": {job_id: {"State": "running", "Failed": False, "Events": [
                                        {"Type": "Received", "DisplayMessage": "Task received by client"},
                                        {"Type": "Started",
                                         "DisplayMessage": "Task started by client"}]}}}]  # fmt: skip
        return {"EvalID": str(uuid.uuid4()), "JobModifyIndex": 100 + self.versions[job_id], "Warnings": ""}

    def deployment(self, job_id: str) -> dict[str, Any] | None:
        dep = self.deployments.get(job_id)
        if dep is None or dep["Status"] != "running":
            return dep
        self.polls[job_id] += 1
        if self.polls[job_id] >= self.settle_polls:
            if job_id in self.failing:
                dep["Status"], dep["StatusDescription"] = "failed", "Failed due to unhealthy allocations"
                state = self.allocs[job_id][0]["TaskStates"][job_id]
                state.update(State="dead", Failed=True)
                state["Events"] += [
                    {
                        "Type": "Driver Failure",
                        "DisplayMessage": "Failed to pull `caravan/x`: manifest unknown",
                    },
                    {
                        "Type": "Not Restarting",
                        "DisplayMessage": "Exceeded allowed attempts 3 in interval 5m0s",
                    },
                ]
                self.allocs[job_id][0]["ClientStatus"] = "failed"
            else:
                dep["Status"], dep["StatusDescription"] = "successful", "Deployment completed successfully"
                count = self.jobs[job_id]["taskgroups"][0].get("count", 1)
                status = "critical" if job_id in self.never_passing else "passing"
                self.consul.set_instances(job_id, count, status)
        return dep


class FakeConsul:
    def __init__(self) -> None:
        self.index = 10
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.instances: dict[str, list[dict[str, Any]]] = {}
        self.log: list[str] = []
        self.lock = threading.Lock()

    def set_instances(self, name: str, count: int, status: str) -> None:
        self.index += 1
        self.instances[name] = [
            {"Node": {"Node": "node-1", "Address": "10.0.0.1"},
             "Service": {"ID": f"_nomad-task-{name}-{i}", "Service": name, "Address": "10.0.0.1",
                         "Port": 20000 + i,
                         "Tags": [], "Meta": {}},
             "Checks": [{"CheckID": f"{name}-ready-{i}", "Name": f"{name} ready", "Status": status,
                         "Output": "HTTP GET /health/ready: 503" if status != "passing" else "200 OK"}]}
            for i in range(count)
        ]  # fmt: skip

    def put_config(self, raw: Any) -> bool:
        if not isinstance(raw, dict):
            raise BadRequest("Request decode failed: body must be an object")
        kind = str(raw.get("Kind", "")).lower()
        if kind not in CONFIG_FIELDS:
            raise BadRequest(f"invalid config entry kind: {raw.get('Kind')}")
        bad = sorted(k for k in raw if k.lower() not in CONFIG_FIELDS[kind])
        if bad:
            raise BadRequest(
                f"Request decode failed: 1 error(s) decoding: * '' has invalid keys: {', '.join(bad)}"
            )
        for source in raw.get("Sources") or []:
            bad = sorted(k for k in source if k.lower() not in SOURCE_FIELDS)
            if bad:
                raise BadRequest(f"Request decode failed: * 'Sources[0]' has invalid keys: {', '.join(bad)}")
            if ("Action" in source) == ("Permissions" in source):
                raise BadRequest("Must set either Action or Permissions")
        if kind == "service-intentions" and raw.get("Name") != "*":
            defaults = self.entries.get(("service-defaults", raw["Name"]))
            l7 = any("Permissions" in s for s in raw.get("Sources") or [])
            if l7 and (defaults is None or defaults.get("Protocol") != "http"):
                raise BadRequest(f'service "{raw["Name"]}" has protocol "tcp", which does not match '
                                 "defined listener protocol for L7 permissions")  # fmt: skip
        self.entries[(kind, raw["Name"])] = raw
        self.log.append(f"config {kind} {raw['Name']}")
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 400 else "text/plain")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            raise BadRequest(f"Request decode failed: {exc}") from exc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            with self.server.agent.lock:
                status, body, headers = self.server.route(method, parts, query, self)
        except BadRequest as exc:
            status, body, headers = 400, str(exc).encode(), {}
        self._send(status, body, headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    agent: Any

    def route(
        self, method: str, parts: list[str], query: dict[str, list[str]], h: _Handler
    ) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


class _NomadServer(_Server):
    agent: FakeNomad

    def route(
        self, method: str, parts: list[str], query: dict[str, list[str]], h: _Handler
    ) -> tuple[int, Any, dict[str, str]]:
        n = self.agent
        if parts[:1] != ["v1"]:
            return 404, b"Invalid URL", {}
        rest = parts[1:]
        if method == "POST" and rest == ["validate", "job"]:
            job = n.decode_job(h._body())
            errors = n.validation_errors(job)
            n.log.append(f"validate {job.get('id')}")
            return 200, {"DriverConfigValidated": True, "ValidationErrors": errors,
                         "Error": "; ".join(errors), "Warnings": ""}, {}  # fmt: skip
        if len(rest) >= 2 and rest[0] == "job":
            job_id = rest[1]
            if method == "POST" and len(rest) == 3 and rest[2] == "plan":
                raw = h._body()
                job = n.decode_job(raw)
                n.log.append(f"plan {job_id}")
                return 200, n.plan(job_id, job), {}
            if method == "POST" and len(rest) == 2:
                job = n.decode_job(h._body())
                n.log.append(f"register {job_id}")
                return 200, n.register(job_id, job), {}
            if job_id not in n.jobs:
                return 404, b"job not found", {}
            if method == "GET" and len(rest) == 2:
                return 200, {"ID": job_id, "Version": n.versions[job_id], "Status": "running"}, {}
            if method == "GET" and rest[2:] == ["deployment"]:
                return 200, n.deployment(job_id), {}
            if method == "GET" and rest[2:] == ["allocations"]:
                return 200, n.allocs.get(job_id, []), {}
        return 404, b"Invalid URL", {}


class _ConsulServer(_Server):
    agent: FakeConsul

    def route(
        self, method: str, parts: list[str], query: dict[str, list[str]], h: _Handler
    ) -> tuple[int, Any, dict[str, str]]:
        c = self.agent
        if method == "PUT" and parts == ["v1", "config"]:
            return 200, c.put_config(h._body()), {}
        if method == "GET" and parts[:2] == ["v1", "config"] and len(parts) == 4:
            entry = c.entries.get((parts[2], parts[3]))
            return (200, entry, {}) if entry else (404, b"Config entry not found", {})
        if method == "GET" and parts[:3] == ["v1", "health", "service"] and len(parts) == 4:
            entries = c.instances.get(parts[3], [])
            if "passing" in query:
                entries = [e for e in entries if all(ch["Status"] == "passing" for ch in e["Checks"])]
            c.log.append(f"health {parts[3]} {len(entries)}")
            return 200, entries, {"X-Consul-Index": str(c.index)}
        return 404, b"Invalid URL", {}


class Agents:
    """Both fakes, serving on loopback ports of their own; ``env`` points the clients at them."""

    def __init__(self, *, settle_polls: int = 2) -> None:
        self.consul = FakeConsul()
        self.nomad = FakeNomad(self.consul, settle_polls=settle_polls)
        self._servers: list[_Server] = []

    def __enter__(self) -> Agents:
        for cls, agent in ((_NomadServer, self.nomad), (_ConsulServer, self.consul)):
            server = cls(("127.0.0.1", 0), _Handler)
            server.agent = agent
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def env(self) -> dict[str, str]:
        nomad, consul = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)
        return {"NOMAD_ADDR": nomad, "CONSUL_HTTP_ADDR": consul}
