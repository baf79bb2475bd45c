"""`invoke deploy --target nomad`: the rendered Consul config entries, then the Nomad jobs in
dependency order (svc-a and svc-c, then svc-b, then the gateway).

For each job: validate (``POST /v1/validate/job``; its ValidationErrors stop the deploy), plan with
a diff (printed), register, then wait until the job's new deployment is successful and as many
instances as it runs pass their Consul checks — only then are the jobs that depend on it
registered (Nomad has no health-gated ordering between jobs). A failed deployment stops the
command, names the job and prints its allocations' task events; ``dry_run`` prints the entries and
plans only. python-nomad and commons' Consul adapter (py-consul) do the talking; the address,
token and CA come from NOMAD_* / CONSUL_* as the commons configs read them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caravan_commons.discovery_consul import ConsulAdapter, ConsulConfig, ConsulError
from caravan_commons.discovery_nomad import NomadAdapter, NomadConfig
from caravan_workspace import render
from caravan_workspace.deploy import DeployError, git_revision, prepare
from caravan_workspace.render import consul as consul_entries
from caravan_workspace.render import nomad as nomad_render

Out = Callable[[str], None]
SETTLED = {"successful"}
FAILED = {"failed", "cancelled"}


@dataclass
class Waits:
    poll_s: float = 2.0
    deployment_s: float = 900.0  # above the jobs' progress_deadline (10m)
    checks_s: float = 120.0


def clients(environ: dict[str, str] | None = None) -> tuple[Any, ConsulAdapter]:
    environ = dict(os.environ if environ is None else environ)
    try:
        nomad = NomadAdapter(NomadConfig.from_env(environ)).client
        consul = ConsulAdapter(ConsulConfig.from_env(environ))
    except Exception as exc:  # a bad address or token, or a client missing: one line
        raise DeployError(f"cannot set up the Nomad/Consul clients: {exc}") from exc
    return nomad, consul


def _nomad_error(exc: Exception) -> str:
    resp = getattr(exc, "nomad_resp", None)
    text = getattr(resp, "text", None) or str(resp or exc)
    status = getattr(resp, "status_code", "")
    return f"{status} {' '.join(str(text).split())[:300]}".strip()


def _nomad(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    import requests
    from nomad.api.exceptions import BaseNomadException

    try:
        return fn(*args, **kwargs)
    except (BaseNomadException, requests.RequestException) as exc:
        raise DeployError(f"nomad {what}: {_nomad_error(exc)}") from exc


def _consul(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    import consul

    try:
        return fn(*args, **kwargs)
    except (consul.ConsulException, OSError, ConsulError) as exc:
        raise DeployError(f"consul {what}: {' '.join(str(exc).split())[:300]}") from exc


def diff_lines(diff: dict[str, Any] | None, indent: str = "  ") -> list[str]:
    """A plan's diff the way `nomad job plan` shows it (+ added, - deleted, +/- edited)."""
    if not diff:
        return []
    marks = {"Added": "+", "Deleted": "-", "Edited": "+/-", "None": " "}
    lines = []
    for field in diff.get("Fields") or []:
        mark = marks.get(field.get("Type"), "?")
        if mark == " ":
            continue
        old, new = field.get("Old", ""), field.get("New", "")
        shown = f'"{old}" => "{new}"' if mark == "+/-" else f'"{new if mark == "+" else old}"'
        lines.append(f"{indent}{mark} {field.get('Name')}: {shown}")
    for key in ("Objects", "TaskGroups", "Tasks"):
        for obj in diff.get(key) or []:
            mark = marks.get(obj.get("Type"), "?")
            if mark == " ":
                continue
            label = f'{key[:-1] if key != "Objects" else ""} "{obj.get("Name")}"'.strip()
            updates = obj.get("Updates")
            more = f" ({', '.join(f'{n} {k}' for k, n in sorted(updates.items()))})" if updates else ""
            lines.append(f"{indent}{mark} {label}{more}")
            lines += diff_lines(obj, indent + "  ")
    return lines


class NomadDeploy:
    def __init__(self, nomad: Any, consul: ConsulAdapter, out: Out, waits: Waits | None = None) -> None:
        self.nomad = nomad
        self.consul = consul
        self.out = out
        self.waits = waits or Waits()

    # -- Consul -------------------------------------------------------------------------------
    def apply_entries(self, entries: dict[str, dict[str, Any]], *, dry_run: bool) -> None:
        config = getattr(self.consul.client, "config", None)
        if config is None and not dry_run:  # python-consul2 has no config entries
            raise DeployError(
                f"writing Consul config entries needs py-consul (installed: {self.consul.flavour})"
            )
        for file, entry in entries.items():
            if dry_run:
                self.out(f"would write Consul config entry {entry['Kind']} {entry['Name']} ({file})")
                continue
            assert config is not None
            body = {k: v for k, v in entry.items() if k not in ("Kind", "Name")}
            ok = _consul(
                f"config entry {entry['Kind']} {entry['Name']}",
                config.set,
                entry["Kind"],
                entry["Name"],
                body,
            )
            if ok is False:
                raise DeployError(f"consul refused config entry {entry['Kind']} {entry['Name']}")
            self.out(f"consul: wrote {entry['Kind']} {entry['Name']}")

    # -- Nomad --------------------------------------------------------------------------------
    def validate(self, name: str, job: dict[str, Any]) -> None:
        response = _nomad(f"validate {name}", self.nomad.validate.validate_job, job)
        body = response.json() if hasattr(response, "json") else response
        errors = body.get("ValidationErrors") or []
        if errors:
            raise DeployError(f"{name}: Nomad refuses the job: {'; '.join(errors)}")
        if body.get("Warnings"):
            self.out(f"{name}: warnings: {body['Warnings']}")

    def plan(self, name: str, job: dict[str, Any]) -> dict[str, Any]:
        plan = _nomad(f"plan {name}", self.nomad.job.plan_job, name, job, diff=True)
        diff = plan.get("Diff") or {}
        kind = diff.get("Type", "None")
        self.out(f"plan {name}: {'no change' if kind == 'None' else kind.lower()}")
        for line in diff_lines(diff):
            self.out(line)
        for group, failure in (plan.get("FailedTGAllocs") or {}).items():
            self.out(f"  ! group {group} cannot be placed: {failure.get('DimensionExhausted') or failure}")
        return plan

    def register(self, name: str, job: dict[str, Any]) -> int:
        _nomad(f"register {name}", self.nomad.job.register_job, name, job)
        current = _nomad(f"read {name}", self.nomad.job.get_job, name)
        version = int(current.get("Version", 0))
        self.out(f"registered {name} (version {version})")
        return version

    def task_events(self, name: str, deployment_id: str | None) -> list[str]:
        allocs = _nomad(f"allocations of {name}", self.nomad.job.get_allocations, name) or []
        lines = []
        for alloc in allocs:
            if deployment_id and alloc.get("DeploymentID") not in (None, deployment_id):
                continue
            for task, state in sorted((alloc.get("TaskStates") or {}).items()):
                for event in state.get("Events") or []:
                    message = event.get("DisplayMessage") or event.get("Message") or ""
                    lines.append(
                        f"  alloc {str(alloc.get('ID'))[:8]} task {task}: {event.get('Type')}: {message}"
                    )
        return lines

    def wait_deployment(self, name: str, version: int) -> None:
        deadline = time.monotonic() + self.waits.deployment_s
        last = None
        while True:
            deployment = _nomad(f"deployment of {name}", self.nomad.job.get_deployment, name) or {}
            if deployment.get("JobVersion") == version:
                status = deployment.get("Status")
                if status != last:
                    self.out(f"{name}: deployment {str(deployment.get('ID'))[:8]} {status}")
                    last = status
                if status in SETTLED:
                    return
                if status in FAILED:
                    for line in self.task_events(name, deployment.get("ID")):
                        self.out(line)
                    raise DeployError(
                        f"{name}: deployment {status}: "
                        f"{deployment.get('StatusDescription') or 'no description'}"
                    )
            if time.monotonic() > deadline:
                for line in self.task_events(name, deployment.get("ID")):
                    self.out(line)
                raise DeployError(f"{name}: no successful deployment of version {version} "
                                  f"within {self.waits.deployment_s:g}s")  # fmt: skip
            time.sleep(self.waits.poll_s)

    def wait_checks(self, name: str, count: int) -> None:
        deadline = time.monotonic() + self.waits.checks_s
        while True:
            _, passing = _consul(f"health of {name}", self.consul.healthy, name)
            if len(passing) >= count:
                self.out(f"{name}: {len(passing)} of {count} instances pass their Consul checks")
                return
            if time.monotonic() > deadline:
                waited = f"{self.waits.checks_s:g}s"
                raise DeployError(f"{name}: {len(passing)} of {count} instances pass their Consul checks "
                                  f"after {waited} (see the checks' output in Consul)")  # fmt: skip
            time.sleep(self.waits.poll_s)

    def run(self, levels: list[list[tuple[str, dict[str, Any]]]], entries: dict[str, dict[str, Any]],
            *, dry_run: bool) -> None:  # fmt: skip
        self.apply_entries(entries, dry_run=dry_run)
        for level in levels:
            versions = {}
            for name, job in level:
                self.validate(name, job)
                self.plan(name, job)
                if not dry_run:
                    versions[name] = self.register(name, job)
            for name, job in level:
                if dry_run:
                    continue
                self.wait_deployment(name, versions[name])
                self.wait_checks(name, job["Job"]["TaskGroups"][0]["Count"])


def deploy(root: Path, env_name: str, *, tag: str | None, dry_run: bool, out: Out,
           deployer: NomadDeploy | None = None) -> None:  # fmt: skip
    deployment, env = prepare(root, env_name, render.NOMAD_DIR)
    revision = git_revision(root)
    levels = []
    for level in deployment.levels:
        jobs = []
        for name in level:
            d = deployment.deployables[name]
            values = {"revision": revision, **({"image_tag": tag} if tag else {})}
            jobs.append((name, nomad_render.api_job(d, deployment, env, **values)))
        levels.append(jobs)
    order = " → ".join(", ".join(level) for level in deployment.levels)
    out(f"deploying to Nomad ({env.name}){' — dry run: plans only' if dry_run else ''}: {order}")
    if deployer is None:
        nomad, consul = clients()
        deployer = NomadDeploy(nomad, consul, out)
    deployer.run(levels, consul_entries.entries(deployment), dry_run=dry_run)
    out("dry run: nothing registered" if dry_run else f"deployed {len(deployment.order)} jobs to Nomad")
