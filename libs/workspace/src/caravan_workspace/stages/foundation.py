"""Stage 1: provision the local runtime and prove the network plan and the security groups."""

from __future__ import annotations

import ipaddress
import sys

from caravan_commons.identity import Signer
from caravan_workspace import __version__
from caravan_workspace.foundation import FoundationError
from caravan_workspace.registry import ActionResult, Context, GateFailure, action, gate
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.ports import PortCollision, listeners, process_tree
from caravan_workspace.runtime.programs import Program, RuntimeError_, http_status
from caravan_workspace.services import DeclarationError

PROBE = "probe"
PROBE_STANDS_IN_FOR = "svc-a"
RUNNING = ("RUNNING", "STARTING")
#: How long the security gate waits for a service instance that is starting (after `invoke down`,
#: the supervisor starts every program again) to answer ready before probing it.
READY_WAIT_S = 120.0


def runtime(ctx: Context) -> LocalRuntime:
    try:
        return LocalRuntime(ctx)
    except (FoundationError, DeclarationError) as exc:
        raise GateFailure(
            str(exc), fix="correct foundation/foundation.toml or the service declaration"
        ) from exc


def probe_program(rt: LocalRuntime) -> Program:
    member = PROBE_STANDS_IN_FOR
    port = rt.ports.port_for(PROBE, member)
    env = {
        "CARAVAN_SERVICE_NAME": member,
        "CARAVAN_HOST": rt.foundation.host,
        "CARAVAN_PORT": str(port),
        "CARAVAN_INSTANCE_ID": PROBE,
        "CARAVAN_SERVICE_VERSION": __version__,
        "CARAVAN_TRACE_EXPORTER": "none",
        "PYTHONUNBUFFERED": "1",
        **rt.identities.env(member),
    }
    return Program(
        name=PROBE,
        member=member,
        kind="probe",
        port=port,
        ready_path="/health/ready",
        metrics_path="/metrics",
        env=env,
        command=(sys.executable, "-m", "caravan_workspace.runtime.probe"),
    )


@action("runtime.provision")
def provision(ctx: Context) -> ActionResult:
    """Identities for every program, the supervisor, and the security probe."""
    rt = LocalRuntime(ctx)
    created = rt.identities.provision()
    started = rt.supervisor.ensure_running()
    probe = probe_program(rt)
    try:
        changed = rt.run([probe])
        rt.programs.wait_ready([probe], timeout=READY_WAIT_S)  # after a restart every program starts at once
    except (RuntimeError_, PortCollision) as exc:
        raise GateFailure(str(exc)) from exc
    parts = []
    if created:
        parts.append(f"identities created: {', '.join(created)}")
    if started:
        parts.append("supervisor started")
    if changed:
        parts.append(f"started: {', '.join(changed)}")
    return ActionResult(
        changed=bool(parts), detail="; ".join(parts) or "identities, supervisor and probe in place"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@gate("foundation.network_plan")
def network_plan(ctx: Context) -> str:
    """The model loads; every running listener is on loopback, on its allocated port; no collisions."""
    rt = runtime(ctx)
    if not rt.supervisor.is_running():
        raise GateFailure("the local runtime is not running", fix="invoke stage 1")
    allocated = rt.ports.allocated()
    owner_of_port: dict[int, str] = {}
    problems: list[str] = []
    count = 0
    all_listeners = listeners()
    statuses = rt.supervisor.status()
    programs = [s for s in statuses if s.state in RUNNING and s.pid]
    for status in statuses:
        if status.state in ("FATAL", "BACKOFF", "EXITED"):
            problems.append(f"{status.name} is {status.state} (invoke logs {status.name})")
    for status in programs:
        tree = process_tree(status.pid or 0)
        for sock in (s for s in all_listeners if s.pid in tree):
            count += 1
            where = f"{sock.host}:{sock.port}"
            if not _is_loopback(sock.host):
                problems.append(f"{status.name} listens on {where}, not on loopback")
            expected = allocated.get(status.name)
            if expected is None:
                problems.append(f"{status.name} listens on {where}, a port the runtime did not allocate")
            elif sock.port != expected:
                problems.append(f"{status.name} listens on {where}, not on its allocated port {expected}")
            previous = owner_of_port.setdefault(sock.port, status.name)
            if previous != status.name:
                problems.append(f"port {sock.port} is used by both {previous} and {status.name}")
    for name, port in allocated.items():
        low, high = rt.ports.runtime_range()
        if not low <= port <= high:
            problems.append(f"{name} was allocated port {port}, outside {low}-{high}")
    if problems:
        raise GateFailure("; ".join(sorted(set(problems))[:4]), fix="invoke down && invoke stage 1")
    if not count:
        raise GateFailure("no program of the runtime is listening", fix="invoke stage 1")
    return f"{count} listeners of {len(programs)} programs, all on loopback at their allocated ports"


def _signer(rt: LocalRuntime, name: str) -> Signer:
    return Signer.from_file(name, rt.identity_dir / f"{name}.key")


def check_enforcement(rt: LocalRuntime, target: str, port: int, path: str) -> list[str]:
    """Allowed, forbidden and anonymous calls to one listener; returns what went wrong."""
    callers = rt.foundation.callers_of(target)
    allowed = next(
        (c for c, paths in sorted(callers.items()) if paths is None and c in rt.identities.known()), None
    )
    forbidden = next((c for c in sorted(rt.identities.known()) if c not in callers and c != target), None)
    problems = []
    if allowed is not None:
        status = http_status(port, path, headers=_signer(rt, allowed).headers_for(target, "GET", path))
        if status in (0, 401, 403) or status >= 500:
            problems.append(f"{allowed} → {target} (allowed) got {status or 'no answer'}")
    if forbidden is not None:
        status = http_status(port, path, headers=_signer(rt, forbidden).headers_for(target, "GET", path))
        if status != 403:
            problems.append(f"{forbidden} → {target} (forbidden) got {status or 'no answer'}, not 403")
    status = http_status(port, path)
    if status != 401:
        problems.append(f"anonymous → {target} got {status or 'no answer'}, not 401")
    return problems


@gate("foundation.security_groups")
def security_groups(ctx: Context) -> str:
    """An allowed call passes, a forbidden one gets 403, one without identity gets 401 — on the
    probe and on every running service instance."""
    rt = runtime(ctx)
    probe = rt.supervisor.program(PROBE) if rt.supervisor.is_running() else None
    if probe is None or probe.state not in RUNNING:
        raise GateFailure("the security probe is not running", fix="invoke stage 1")
    port = rt.ports.allocated()[PROBE]
    problems = check_enforcement(rt, PROBE_STANDS_IN_FOR, port, "/probe")
    checked = 1
    try:
        rt.programs.wait_started(timeout=READY_WAIT_S)  # never probe a program still starting
    except RuntimeError_ as exc:
        raise GateFailure(str(exc), fix="invoke logs NAME") from exc
    for program in rt.running_service_programs():
        assert program.port is not None
        problems += check_enforcement(rt, program.member, program.port, "/__caravan_probe__")
        checked += 1
    if problems:
        raise GateFailure("; ".join(problems[:4]), fix="check the identity settings of the named programs")
    return f"allowed → 2xx, forbidden → 403, anonymous → 401 on {checked} listener(s)"
