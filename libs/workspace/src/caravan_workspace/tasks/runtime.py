"""`invoke status`, `invoke down`, `invoke logs`, `invoke trace`: what the workspace started, what it
did, and stopping it."""

from __future__ import annotations

import subprocess
import time

from invoke import Context, task
from invoke.exceptions import Exit
from rich.table import Table
from rich.text import Text

from caravan_workspace.console import STATUS_STYLE, lanes_line, stage_status
from caravan_workspace.runtime.inspect import format_uptime, probe_program
from caravan_workspace.runtime.ports import read_ports
from caravan_workspace.runtime.programs import http_status, read_programs
from caravan_workspace.runtime.supervisor import Supervisor, SupervisorError
from caravan_workspace.tasks import deploy as deploy_tasks
from caravan_workspace.tasks.common import BAD_INPUT, FAILED, Workspace, console, workspace
from caravan_workspace.traces import find_trace, read_spans, waterfall

#: A program that takes longer than this to stop is named by `invoke down`.
SLOW_STOP_S = 5.0
PROGRAM_STYLE = {"RUNNING": "green", "STARTING": "cyan", "BACKOFF": "yellow", "STOPPED": "dim"}


def print_status(ws: Workspace) -> None:
    """The programs the workspace runs (from the supervisor) and every stage's status."""
    out = console()
    supervisor = Supervisor(ws.ctx.state_dir)
    if supervisor.is_running():
        ports = read_ports(ws.ctx.state_dir)
        recorded = read_programs(ws.ctx.state_dir)
        programs = Table(title="Programs")
        for column in ("program", "state", "pid", "uptime", "address", "version", "readiness"):
            programs.add_column(column)
        for p in supervisor.status():
            port = ports.get(p.name)
            running = p.state == "RUNNING"
            version, ready = probe_program(port, recorded.get(p.name, {})) if running else ("–", "–")
            programs.add_row(
                p.name,
                Text(p.state, style=PROGRAM_STYLE.get(p.state, "red")),
                str(p.pid or "–"),
                format_uptime(p.uptime),
                f"127.0.0.1:{port}" if port else "–",
                version,
                Text(ready, style="green" if ready == "ready" else "yellow"),
            )
        out.print(programs)
    else:
        out.print("Programs: the supervisor is not running (nothing started; `invoke up` starts it)")
    stages = Table(title="Stages")
    for column in ("stage", "name", "status", "last finished", "reason"):
        stages.add_column(column)
    records = ws.store.stages()
    for n, stage in ws.plan.stages.items():
        record = records.get(n)
        status = stage_status(record) if record else "not run"
        stages.add_row(
            str(n),
            stage.name,
            Text(status, style=STATUS_STYLE[status]),
            (record.finished_at if record else None) or "–",
            record.reason if record else "",
        )
    out.print(stages)
    out.print(Text("Lanes: ", style="bold") + lanes_line(ws.plan, records))


@task(help={"target": "local (default) or a deploy target: docker"})
def status(c: Context, target: str = "local") -> None:
    """Show every program the workspace runs (state, pid, uptime) and every stage's status."""
    if target != "local":
        return deploy_tasks.target_status(target)
    print_status(workspace())


@task(
    help={
        "target": "local (default) or a deploy target: docker",
        "purge": "docker: also the volumes and keys",
    }
)
def down(c: Context, target: str = "local", purge: bool = False) -> None:
    """Stop everything the workspace started: every program, drained gracefully, then the supervisor."""
    if target != "local":
        return deploy_tasks.target_down(target, purge)
    ws = workspace()
    supervisor = Supervisor(ws.ctx.state_dir)
    try:
        stopped = supervisor.shutdown()
    except SupervisorError as exc:
        raise Exit(f"error: {exc} (see invoke logs NAME)", code=FAILED) from exc
    if stopped is None:
        print("nothing to stop: the supervisor is not running")
        return
    print(f"stopped every program and the supervisor in {stopped.took_s:.1f}s")
    if stopped.slowest and stopped.slowest_s > SLOW_STOP_S:
        drain = supervisor.drains().get(stopped.slowest)
        print(
            f"{stopped.slowest} held it up: it took {stopped.slowest_s:.1f}s to stop"
            + (f" (its drain is {drain}s)" if drain else "")
        )


@task(
    help={
        "name": "program name as `invoke status` lists it",
        "follow": "keep printing new lines",
        "target": "local (default) or a deploy target: docker",
    }
)
def logs(c: Context, name: str, follow: bool = False, target: str = "local") -> None:
    """Print a program's log (JSON lines for services); -f follows it."""
    if target != "local":
        return deploy_tasks.target_logs(target, name)
    ws = workspace()
    path = Supervisor(ws.ctx.state_dir).log_path(name)
    if not path.exists():
        raise Exit(f"error: no log for program {name!r} (see `invoke status` for names)", code=BAD_INPUT)
    if follow:
        subprocess.run(["tail", "-n", "50", "-F", str(path)], check=False)
    else:
        print(path.read_text(encoding="utf-8", errors="replace"), end="")


@task(help={"id": "an order id, a trace id, or any value a span of the trace carries"})
def trace(c: Context, id: str) -> None:
    """Print one trace (e.g. of an order) as a waterfall: where the time went, hop by hop."""
    needle = id.strip()
    if not needle:
        raise Exit("error: give an order id or a trace id", code=BAD_INPUT)
    ws = workspace()
    found = find_trace(read_spans(ws.ctx.state_dir / "traces"), needle)
    if found is None:
        raise Exit(
            f"error: no trace mentions {needle!r} (traces are read from the runtime's trace files; "
            "new traces are sampled — CARAVAN_TRACE_SAMPLE_RATIO, default 0.1 — and a request sent "
            "with 'traceparent: 00-<32 hex>-<16 hex>-01' is always traced)",
            code=FAILED,
        )
    for line in waterfall(found, width=max(console().width, 80)):
        print(line)


@task(help={"name": "program name as `invoke status` lists it"})
def restart(c: Context, name: str) -> None:
    """Start a program again (stopped, crashed or running) and wait until it answers ready."""
    ws = workspace()
    supervisor = Supervisor(ws.ctx.state_dir)
    if not supervisor.is_running():
        raise Exit("error: the supervisor is not running (`invoke up` starts everything)", code=FAILED)
    if supervisor.program(name) is None:
        raise Exit(f"error: no program {name!r} (see `invoke status` for names)", code=BAD_INPUT)
    started = time.monotonic()
    try:
        supervisor.restart(name)
        supervisor.wait_for(name, ("RUNNING",), timeout=60)
    except SupervisorError as exc:
        raise Exit(f"error: {exc} (see `invoke logs {name}`)", code=FAILED) from exc
    info = read_programs(ws.ctx.state_dir).get(name, {})
    port = read_ports(ws.ctx.state_dir).get(name)
    ready_path = info.get("ready_path")
    while port and ready_path and http_status(port, str(ready_path), timeout=1.0) != 200:
        if time.monotonic() - started > 60:
            raise Exit(
                f"error: {name} runs but is not ready after 60s (see `invoke logs {name}`)", code=FAILED
            )
        time.sleep(0.2)
    print(f"{name} running{' and ready' if ready_path else ''} after {time.monotonic() - started:.1f}s")
