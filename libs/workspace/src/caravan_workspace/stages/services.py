"""Stages 4–12: the probes every service lane shares (plan.toml passes ``service = "svc-x"``).

House conventions the probes rely on (the service template renders them):
- the domain lives in ``src/<package>/domain/`` and imports only the standard library, commons'
  pure modules and itself;
- domain tests in ``tests/unit/domain/``; repository tests (real database) in
  ``tests/integration/repository/``;
- ``python -m <package>.infrastructure.db.migrate`` applies the service's migrations to the
  database named by ``CARAVAN_DATABASE_URL``.

- ``tests/gateway/`` holds the service's round trips through the running gateway (what "API working
  through the gateway" means for that service); ``python -m <package>.demo``, where a service has
  one, loads its demo data idempotently.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from caravan_commons.architecture import domain_violations
from caravan_workspace import release
from caravan_workspace.gate_cache import Inputs, InputsFn
from caravan_workspace.registry import ActionResult, Context, GateFailure, action, gate
from caravan_workspace.runtime import catalog, databases
from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.programs import RuntimeError_
from caravan_workspace.services import Service


def _service(ctx: Context, name: str) -> tuple[LocalRuntime, Service]:
    rt = LocalRuntime(ctx)
    if name not in rt.services:
        raise GateFailure(f"no service {name!r} is declared (no {name}/service.toml)")
    return rt, rt.services[name]


# ------------------------------------------------------------------------------ cached inputs


def installed_set(python: Path) -> str:
    """The resolved dependency set of a virtualenv: every distribution installed in it, by name
    and version (read from its ``*.dist-info`` folders, without starting Python)."""
    venv = python.parent.parent
    return "\n".join(sorted(p.name for p in venv.glob("lib/python*/site-packages/*.dist-info")))


def database_kind() -> str:
    return "postgres" if os.environ.get("CARAVAN_TEST_POSTGRES_DSN") else "sqlite"


def project_inputs(folder: Path, tests: str | None, python: Path, commons_version: str) -> Inputs:
    """The inputs of a service gate that runs files only: the project's sources and project file,
    its test folder ``tests`` (with the conftest files above it), the resolved dependency set of
    the virtualenv ``python`` belongs to, the commons version of the workspace and the database
    kind the tests run on."""
    files = [folder / "src", folder / "pyproject.toml"]
    if tests is not None:
        suite = folder / tests
        files.append(suite)
        files += [parent / "conftest.py" for parent in suite.parents if parent.is_relative_to(folder)]
    return Inputs(
        files=files,
        values={
            "dependencies": installed_set(python),
            "commons": commons_version,
            "database": database_kind(),
        },
    )


def service_inputs(tests: str | None, *, test_venv: bool = True) -> InputsFn:
    """An inputs function for a service gate (plan.toml's ``service`` arg) that runs ``tests``
    (None: no tests, e.g. migrations) in the service's (test) virtualenv."""

    def inputs(ctx: Context, service: str) -> Inputs:
        rt, svc = _service(ctx, service)
        python = rt.environments.ensure(svc, test=test_venv)
        return project_inputs(svc.folder, tests, python, release.project_version(release.commons_dir(ctx)))

    return inputs


# ------------------------------------------------------------------------------------- domain


@gate("service.domain_pure")
def domain_pure(ctx: Context, service: str) -> str:
    _, svc = _service(ctx, service)
    domain = svc.folder / "src" / svc.package / "domain"
    if not domain.is_dir():
        raise GateFailure(f"{service} has no domain package ({domain.relative_to(ctx.root)})")
    definitions, problems = domain_violations(domain, svc.package)
    if problems:
        raise GateFailure(
            "the domain imports " + "; ".join(problems[:3]), fix="move that code out of the domain"
        )
    if not definitions:
        raise GateFailure(f"the {service} domain defines nothing yet", fix=f"write the {svc.title} domain")
    return f"{definitions} definitions; imports only the standard library, pure commons modules and itself"


def _pytest(
    rt: LocalRuntime, svc: Service, folder: Path, env: dict[str, str] | None = None, *, timeout: float = 1800
) -> str:
    tests = list(folder.rglob("test_*.py")) if folder.is_dir() else []
    if not tests:
        raise GateFailure(
            f"no tests in {folder.relative_to(rt.ctx.root)} yet", fix=f"write them ({svc.title})"
        )
    try:
        python = rt.environments.ensure(svc, test=True)
    except RuntimeError_ as exc:
        raise GateFailure(str(exc), fix="invoke stage 3 (is caravan-commons published?)") from exc
    done = subprocess.run(
        [str(python), "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider"],
        cwd=svc.folder,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        raise GateFailure(
            f"{folder.relative_to(svc.folder)}: {summary}" + (f" — {failed[0]}" if failed else ""),
            fix=f"cd {svc.name} && pytest {folder.relative_to(svc.folder)}",
        )
    return summary


@gate("service.domain_tests", inputs=service_inputs("tests/unit/domain"))
def domain_tests(ctx: Context, service: str) -> str:
    rt, svc = _service(ctx, service)
    return _pytest(rt, svc, svc.folder / "tests" / "unit" / "domain")


# ------------------------------------------------------------------------------ infrastructure


def configured_database(ctx: Context, svc: Service) -> str:
    """The database the repository gates use: a Postgres server when CARAVAN_TEST_POSTGRES_DSN
    names one, else a fresh SQLite file of the gate's own in the state folder — never the running
    service's database, which the tests would empty."""
    dsn = os.environ.get("CARAVAN_TEST_POSTGRES_DSN")
    if dsn:
        return dsn
    path = ctx.state_dir / "data" / f"{svc.name}-repository-gate.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{path}"


@gate("service.repository_tests", inputs=service_inputs("tests/integration/repository"))
def repository_tests(ctx: Context, service: str) -> str:
    rt, svc = _service(ctx, service)
    url = configured_database(ctx, svc)
    summary = _pytest(
        rt, svc, svc.folder / "tests" / "integration" / "repository", {"CARAVAN_TEST_DATABASE_URL": url}
    )
    return f"{summary} ({url.split(':', 1)[0]})"


@gate("service.migrations", inputs=service_inputs(None, test_venv=False))
def migrations_apply(ctx: Context, service: str) -> str:
    """The service's migrations apply to an empty database."""
    rt, svc = _service(ctx, service)
    module = databases.migrate_module(svc)
    if module is None:
        module = f"{svc.package}.infrastructure.db.migrate"
        raise GateFailure(
            f"{service} has no migrations yet ({module})", fix=f"write the {svc.title} infrastructure"
        )
    try:
        python = rt.environments.ensure(svc)
    except RuntimeError_ as exc:
        raise GateFailure(str(exc), fix="invoke stage 3 (is caravan-commons published?)") from exc
    with tempfile.TemporaryDirectory(prefix=f"{service}-migrations-") as tmp:
        try:
            rt.databases.migrate(svc, python, f"sqlite:///{Path(tmp) / 'empty.sqlite3'}")
        except RuntimeError_ as exc:
            raise GateFailure(f"{exc} (on an empty database)") from exc
    return "applied to an empty SQLite database"


# ----------------------------------------------------------------------------------------- API


@action("service.deploy")
def deploy(ctx: Context, service: str) -> ActionResult:
    """Build the service's virtualenv if its project changed and run its instances."""
    rt, svc = _service(ctx, service)
    try:
        changed = rt.deploy(svc)
    except RuntimeError_ as exc:
        raise GateFailure(str(exc)) from exc
    n = rt.instances.count(svc)  # service.toml's count, or what `invoke scale` chose
    return ActionResult(
        changed=bool(changed),
        detail=f"{n} instance{'s' if n > 1 else ''} ready: {', '.join(changed) or 'unchanged'}",
    )


@gate("service.deployed")
def deployed(ctx: Context, service: str) -> str:
    """Every declared instance runs, answers ready, and discovery lists it as ready."""
    rt, svc = _service(ctx, service)
    programs = rt.service_programs(svc)
    running = rt.programs.live_names()  # answering ready within startsecs counts
    missing = [p.name for p in programs if p.name not in running]
    if missing:
        raise GateFailure(f"not running: {', '.join(missing)}", fix=f"invoke stage {svc.lane}")
    deadline = time.monotonic() + 5
    while True:
        ready = {s.id for s in catalog.ready_instances(ctx.state_dir, service)}
        absent = [p.name for p in programs if p.name not in ready]
        if not absent:
            return f"{len(programs)} instance(s) running and ready in discovery"
        if time.monotonic() > deadline:
            raise GateFailure(
                f"not ready in discovery: {', '.join(absent)}", fix="invoke logs catalog-checker"
            )
        time.sleep(0.1)


@action("service.demo_data")
def demo_data(ctx: Context, service: str) -> ActionResult:
    """Load the service's demo data (``python -m <package>.demo``) into its database, idempotently."""
    rt, svc = _service(ctx, service)
    module = f"{svc.package}.demo"
    if not (svc.folder / "src" / svc.package / "demo.py").exists():
        raise GateFailure(f"{service} has no demo loader ({module})", fix=f"write {module}")
    python = rt.venv_dir(svc.name) / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", module],
        cwd=svc.folder,
        env={**os.environ, "CARAVAN_DATABASE_URL": rt.database_url(svc)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    last = (
        (done.stdout if done.returncode == 0 else done.stderr or done.stdout).strip().splitlines() or [""]
    )[-1]
    if done.returncode != 0:
        raise GateFailure(f"{module} failed: {last or 'no output'}")
    return ActionResult(changed=" 0 added" not in f" {last}", detail=last)


def _gateway_url(rt: LocalRuntime) -> str:
    program = rt.supervisor.program(gateway_runtime.PROGRAM) if rt.supervisor.is_running() else None
    if program is None or program.state != "RUNNING":
        raise GateFailure("the gateway is not running", fix="invoke stage 2")
    return gateway_runtime.url(rt)


@gate("service.api")
def api_through_gateway(ctx: Context, service: str) -> str:
    """The service's own round trips (``tests/gateway/``) pass against the running system, through
    the gateway, with the provisioned API keys; its upstreams must be deployed and ready."""
    rt, svc = _service(ctx, service)
    url = _gateway_url(rt)
    for upstream in (service, *svc.depends_on):
        if not catalog.ready_instances(ctx.state_dir, upstream):
            raise GateFailure(
                f"{upstream} has no ready instance in discovery",
                fix=f"invoke stage {rt.services[upstream].lane} (its lane deploys {upstream})",
            )
    env = {
        "CARAVAN_GATEWAY_URL": url,
        "CARAVAN_GATEWAY_OPERATOR_KEY_FILE": str(gateway_runtime.api_key_file(rt)),
        "CARAVAN_GATEWAY_CUSTOMER_KEY_FILE": str(gateway_runtime.api_key_file(rt, "demo")),
        "CARAVAN_GATEWAY_OTHER_CUSTOMER_KEY_FILE": str(gateway_runtime.api_key_file(rt, "demo-2")),
        "CARAVAN_IDENTITY_DIR": str(rt.identity_dir),
        **catalog.discovery_env(rt.ctx.state_dir),
    }
    return _pytest(rt, svc, svc.folder / "tests" / "gateway", env, timeout=600) + " through the gateway"
