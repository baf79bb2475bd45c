"""`invoke plan`, `invoke stage`, `invoke up`, `invoke reset`, `invoke toolchain`."""

from __future__ import annotations

import json

from invoke import Context, task
from invoke.exceptions import Exit
from rich.table import Table
from rich.text import Text

from caravan_workspace import graph as graphs
from caravan_workspace.console import (
    ConsoleReporter,
    compact_numbers,
    critical_path,
    lanes_line,
    plan_json,
    plan_table,
)
from caravan_workspace.engine import Engine, RunResult
from caravan_workspace.plan import SelectionError
from caravan_workspace.state import reset_state
from caravan_workspace.tasks.common import BAD_INPUT, FAILED, Workspace, console, workspace
from caravan_workspace.toolchain import InstallError, install_missing, survey
from caravan_workspace.traces import find_trace, read_spans, waterfall


@task(
    help={
        "format": "table (default) or json",
        "graph": "also render the dependency graph (SVG and PNG) coloured by status and print its path",
    }
)
def plan(c: Context, format: str = "table", graph: bool = False) -> None:
    """Show the 15-stage plan: status, each gate's last result, the lanes and the critical path."""
    if format not in ("table", "json"):
        raise Exit(f"error: unknown format {format!r}: use table or json", code=BAD_INPUT)
    ws = workspace()
    records = ws.store.stages()
    out = console()
    if format == "json":
        print(json.dumps(plan_json(ws.plan, records), indent=2))
    else:
        out.print(plan_table(ws.plan, records))
        out.print(Text("Lanes: ", style="bold") + lanes_line(ws.plan, records))
        path = critical_path(ws.plan, records)
        out.print(
            Text("Critical path: ", style="bold")
            + Text(" → ".join(map(str, path)) + f" ({len(path)} stages)")
        )
    if graph:
        try:
            svg, png = graphs.render(ws.plan, records, ws.ctx.state_dir / "graph")
        except graphs.GraphError as exc:
            raise Exit(f"error: {exc}", code=FAILED) from exc
        out.print(f"graph: {svg}\ngraph: {png}")


def _run(
    ws: Workspace,
    numbers: list[int],
    *,
    with_deps: bool,
    selector: str,
    check_deps: bool = True,
    fresh: bool = False,
) -> RunResult:
    out = console()
    command = f"invoke stage {selector}" + (" --with-deps" if with_deps else "")
    command += ("" if check_deps else " --gates-only") + (" --fresh" if fresh else "")
    if not check_deps:
        out.print(Text(f"gates only: the dependencies of stage {selector} are NOT checked", style="yellow"))
    elif not with_deps and ws.plan.external_dependencies(numbers):
        deps = compact_numbers(ws.plan.external_dependencies(numbers))
        out.print(Text(f"re-checking the gates of stage {deps} (dependencies)", style="dim"))
    with ConsoleReporter(out) as reporter:
        engine = Engine(
            ws.plan,
            root=ws.ctx.root,
            state_dir=ws.ctx.state_dir,
            store=ws.store,
            reporter=reporter,
            fresh=fresh,
        )
        result = engine.run(numbers, with_deps=with_deps, check_deps=check_deps, command=command)
    for refusal in result.refusals:
        out.print(Text(refusal.message(f"invoke stage {selector} --with-deps"), style="yellow"))
    summary = Table.grid(padding=(0, 2))
    for n, record in sorted(result.records.items()):
        style = "green" if record.status == "passed" else "red"
        summary.add_row(f"stage {n}", Text(record.status, style=style), ws.plan.stages[n].name, record.reason)
    out.print(summary)
    out.print(f"report: {result.junit_path}")
    return result


@task(
    help={
        "selector": "a stage 1..15, a range like 4-6, or a lane: foundation, a, b, c, all",
        "with_deps": "run the stages this one depends on first instead of refusing",
        "gates_only": "prove this stage's own actions and gates without checking its dependencies",
        "fresh": "re-run every gate, even those whose inputs are unchanged since they last passed",
    }
)
def stage(
    c: Context, selector: str, with_deps: bool = False, gates_only: bool = False, fresh: bool = False
) -> None:
    """Bring one stage (or range, or lane) up: re-check dependencies, run its actions, prove its gates."""
    ws = workspace()
    try:
        numbers = ws.plan.select(selector)
    except SelectionError as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    if with_deps and gates_only:
        raise Exit("error: --with-deps and --gates-only exclude each other", code=BAD_INPUT)
    result = _run(ws, numbers, with_deps=with_deps, selector=selector, check_deps=not gates_only, fresh=fresh)
    if result.refusals:
        raise Exit(code=FAILED)
    if not result.ok:
        raise Exit(f"stage {selector}: not every gate passed", code=FAILED)


@task(help={"fresh": "re-run every gate, even those whose inputs are unchanged since they last passed"})
def up(c: Context, fresh: bool = False) -> None:
    """Run every stage in dependency order (lanes A, B and C concurrently), then show the status."""
    ws = workspace()
    _install_system_packages()
    result = _run(ws, list(ws.plan.stages), with_deps=True, selector="1-15", fresh=fresh)
    from caravan_workspace.tasks.runtime import print_status

    print_status(workspace())
    if result.records.get(DEMO_STAGE) and result.records[DEMO_STAGE].status == "passed":
        _print_demo_order(ws)  # only an order this run placed
    from caravan_workspace.tasks.console import console_url

    url = console_url(ws)
    if url:
        print(f"\nconsole: `invoke console` serves {url}/ (it prints the login link)")
    if not result.ok:
        failed = [n for n, r in result.records.items() if r.status != "passed"]
        raise Exit(f"invoke up: stages not passing: {compact_numbers(failed)} (see invoke plan)", code=FAILED)


#: The stage that places the demo order (integration).
DEMO_STAGE = 13


def _print_demo_order(ws: Workspace) -> None:
    """The order the integration stage placed, its status and its waterfall (when there is one)."""
    try:
        order = json.loads((ws.ctx.state_dir / "integration" / "demo-order.json").read_text())
    except (OSError, ValueError):
        return
    print(f"\ndemo order {order.get('id')}: {order.get('status')}")
    found = find_trace(read_spans(ws.ctx.state_dir / "traces"), str(order.get("id")))
    for line in waterfall(found, width=max(console().width, 80)) if found else []:
        print(line)


@task
def reset(c: Context) -> None:
    """Set the state file aside (e.g. when it is corrupt) so the next run starts afresh."""
    from caravan_workspace import paths

    moved = reset_state(paths.state_dir(paths.find_root()))
    print(f"state set aside as {moved.name}" if moved else "no state file: nothing to reset")


def _install_system_packages() -> None:
    """Install the system packages the stages need (before anything else), or stop with exit 2
    and the one command that installs them."""
    try:
        installed = install_missing(say=lambda line: console().print(Text(line, style="cyan")))
    except InstallError as exc:
        raise Exit(f"error: {exc}", code=BAD_INPUT) from exc
    if installed:
        console().print(Text(f"installed: {' '.join(installed)}", style="green"))


@task(help={"install": "install the system packages the stages need (apt-get; as root or with sudo)"})
def toolchain(c: Context, install: bool = False) -> None:
    """Show which tools are present, which are missing, and the command that installs each."""
    if install:
        _install_system_packages()
    table = Table(title="Toolchain")
    for column in ("tool", "status", "version", "used for", "install"):
        table.add_column(column)
    for s in survey():
        status = (
            Text("present", style="green")
            if s.path
            else Text(
                "missing" + (" (required)" if s.tool.required else ""),
                style="red" if s.tool.required else "yellow",
            )
        )
        table.add_row(s.tool.name, status, s.version, s.tool.purpose, "" if s.path else s.tool.install)
    console().print(table)
