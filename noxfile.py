"""Test sessions: one per package (each installs only that package and its declared dependencies),
plus integration, lint, typecheck and the benchmarks. `nox -l` lists them; `./caravan test` runs
the default ones, as CI does."""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYTHON = "3.11"


def test_group(folder: str) -> list[str]:
    """The `test` dependency group a package declares in its pyproject.toml."""
    return list(
        nox.project.dependency_groups(nox.project.load_toml(ROOT / folder / "pyproject.toml"), "test")
    )


def run_package_tests(session: nox.Session, folder: str, extras: str = "") -> None:
    """Install one package (editable) with only its own declared dependencies and run its tests."""
    session.install("-e", f"{folder}{extras}", *test_group(folder))
    session.run("pytest", folder, "-q", *session.posargs)


def run_deployable_tests(session: nox.Session, folder: str) -> None:
    """A deployable (service, gateway) takes caravan-commons from the workspace index only: its
    tests run against the lowest and the highest commons its range allows. The index must be up
    with commons published (`invoke test` sees to that; by hand: `invoke stage 3 --gates-only`)."""
    from caravan_workspace.commons_bounds import run_against_commons_bounds  # the workspace's .venv

    run_against_commons_bounds(session, ROOT / folder, root=ROOT)


@nox.session(python=PYTHON, tags=["packages"])
def workspace(session: nox.Session) -> None:
    """The workspace tooling: plan engine, CLI, runtime."""
    run_package_tests(session, "libs/workspace")


@nox.session(python=PYTHON, tags=["packages"])
def commons(session: nox.Session) -> None:
    """caravan-commons."""
    run_package_tests(session, "libs/commons", "[postgres,server,otlp]")


@nox.session(python=PYTHON, tags=["packages"])
def gateway(session: nox.Session) -> None:
    """The API gateway (shared/gateway)."""
    run_deployable_tests(session, "shared/gateway")


def service_session(folder: str, package: str, title: str) -> None:
    """One session per service, named by its package (svc_a, ...): every folder with a
    service.toml gets one, so a service rendered by `invoke new-service` is picked up at once."""

    def session_fn(session: nox.Session) -> None:
        run_deployable_tests(session, folder)

    session_fn.__doc__ = f"{folder}, {title}: its tests against the lowest and highest commons."
    nox.session(name=package, python=PYTHON, tags=["packages", "services"])(session_fn)


for _declaration in sorted(ROOT.glob("*/service.toml")):
    _service = tomllib.loads(_declaration.read_text())
    service_session(_declaration.parent.name, _service["package"], _service["title"])


@nox.session(python=PYTHON, tags=["system"])
def integration(session: nox.Session) -> None:
    """Cross-service suites under tests/: the whole system on the local runtime in a workspace of
    its own (own state, ports, keys and databases; torn down afterwards), on SQLite and — when
    CARAVAN_TEST_POSTGRES_DSN names a server — on Postgres; contracts; the reliability run."""
    if not any((ROOT / "tests").rglob("test_*.py")):
        session.skip("no cross-service tests under tests/ yet")
    session.install("-e", "libs/workspace", "pytest", "hypothesis", "httpx", "asyncpg", "schemathesis>=4.0")
    session.run("pytest", "tests", "--ignore=tests/quickstart", "-q", "-rs", *session.posargs)


@nox.session(python=PYTHON, default=False, tags=["system"])
def quickstart(session: nox.Session) -> None:
    """The README's Quickstart on a fresh machine: a clean Debian 12 container (no system packages),
    as root, a fresh clone, `./caravan up` → stages 1–13 pass with no manual step. Needs a Docker
    engine and the network (Debian's mirror, PyPI); slow (the packages are downloaded). CI runs it
    after `./caravan test`."""
    session.install("-e", "libs/workspace", "pytest")
    session.run("pytest", "tests/quickstart", "-q", "-rs", *session.posargs)


@nox.session(python=PYTHON, tags=["static"])
def lint(session: nox.Session) -> None:
    """ruff: lint and format check over the whole workspace."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON, tags=["static"])
def typecheck(session: nox.Session) -> None:
    """mypy over the workspace tooling and commons."""
    session.install("mypy", "-e", "libs/workspace", "-e", "libs/commons[postgres,server]", "types-setuptools")
    session.run("mypy", "libs/workspace/src", "libs/commons/src", *session.posargs)


@nox.session(python=PYTHON, default=False, tags=["bench"])
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/ (slow; each prints a table and keeps its results). Needs wrk and,
    for the gateway's anchor, caddy (Debian packages), and the workspace index up."""
    from caravan_workspace.commons_bounds import index_env  # the workspace's .venv

    session.install("-e", "libs/commons[server]", "-e", "libs/workspace", "httpx", "asyncpg")
    session.install("-e", "shared/gateway", env=index_env(ROOT))  # commons from the workspace index
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py"))
    for script in session.posargs or scripts:
        session.run("python", script)


@nox.session(python="3.11", tags=["packages", "contract"])
@nox.parametrize("client", ["python-consul2==0.1.5", "py-consul==1.8.0"])
def commons_consul(session: nox.Session, client: str) -> None:
    """Discovery backends of commons against the documented HTTP contracts (fake agents): the Consul
    adapter with each client (both install the module `consul`, so one per environment), and the
    Nomad backend (python-nomad). Live tests run too when CONSUL_HTTP_ADDR / NOMAD_ADDR are set."""
    session.install("-e", "libs/commons[consul,nomad]", client, *test_group("libs/commons"))
    tests = "libs/commons/tests"
    session.run(
        "pytest",
        f"{tests}/integration/test_contract_consul.py",
        f"{tests}/integration/test_live_consul.py",
        f"{tests}/integration/test_contract_nomad.py",
        f"{tests}/integration/test_live_nomad.py",
        f"{tests}/unit/test_discovery_config.py",
        "-q",
        "-rs",
        *session.posargs,
        env={"CARAVAN_CONSUL_CLIENT": client},
    )
