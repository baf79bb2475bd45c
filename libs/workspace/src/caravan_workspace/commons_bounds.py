"""Run a service's tests against the lowest and the highest caravan-commons its range allows.

A service declares ``caravan-commons>=X.Y,<X+1``; both ends must work. uv resolves the range from
the workspace index (the service's explicit index) with ``--resolution lowest-direct`` (the oldest
published release the range admits) and ``--resolution highest`` (the newest). Use it from the
noxfile::

    from caravan_workspace.commons_bounds import run_against_commons_bounds

    @nox.session(python="3.11", tags=["services"])
    def svc_a(session):
        run_against_commons_bounds(session, ROOT / "svc-a", root=ROOT)

The workspace index must be running (``invoke stage 3``, or ``invoke commons.index``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from caravan_workspace.registry import Context
from caravan_workspace.runtime import index

RESOLUTIONS = {"lowest": "lowest-direct", "highest": "highest"}
VERSION_PROBE = "import importlib.metadata as m; print(m.version('caravan-commons'))"


def install_args(service: Path, bound: str) -> list[str]:
    """``uv pip install`` arguments that (re)resolve caravan-commons at one end of the range."""
    if bound not in RESOLUTIONS:
        raise ValueError(f"bound must be one of {sorted(RESOLUTIONS)}, not {bound!r}")
    return [
        "--resolution", RESOLUTIONS[bound],
        "--upgrade-package", "caravan-commons",
        "--reinstall-package", "caravan-commons",
        "-e", str(service),
    ]  # fmt: skip


def testing_requirements(service: Path) -> list[str]:
    data = tomllib.loads((service / "pyproject.toml").read_text())
    return [d for d in data.get("dependency-groups", {}).get("test", []) if isinstance(d, str)]


def commons_requirement(service: Path) -> str:
    data = tomllib.loads((service / "pyproject.toml").read_text())
    for dep in data.get("project", {}).get("dependencies", []):
        if dep.replace("_", "-").lower().startswith("caravan-commons"):
            return str(dep)
    raise ValueError(f"{service.name}/pyproject.toml does not depend on caravan-commons")


def index_env(root: Path) -> dict[str, str]:
    """``UV_INDEX`` naming the workspace index's real URL (the port may differ from the default)."""
    ctx = Context.at(root)
    return {"UV_INDEX": f"{index.INDEX_NAME}={index.index_url(ctx)}"}


def run_against_commons_bounds(
    session: Any, service: Path, *, root: Path, bounds: Sequence[str] = ("lowest", "highest")
) -> dict[str, str]:
    """In a nox session (uv backend): for each bound install the service with caravan-commons at that
    end of its range, log the version and run the service's tests — once per distinct version (when
    the range admits one published release, the lowest is the highest). Returns bound → version."""
    ctx = Context.at(root)
    if not index.health_ok(index.index_port(ctx)):
        # Started again from the workspace's state (the packages it published are kept there), so a
        # session never fails only because the index stopped since `invoke test` prepared it.
        session.log(f"the workspace package index is not running at {index.index_url(ctx)}: starting it")
        try:
            index.ensure_index(ctx)
        except index.PackageIndexError as exc:
            session.error(f"the workspace package index cannot start ({exc}): run `invoke stage 3`")
    env = index_env(root)
    session.install(*testing_requirements(service), env=env)
    seen: dict[str, str] = {}
    for bound in bounds:
        session.install(*install_args(service, bound), env=env)
        version = str(session.run("python", "-c", VERSION_PROBE, silent=True, env=env)).strip()
        tested = version in seen.values()
        seen[bound] = version
        session.log(
            f"{service.name}: caravan-commons {version}, "
            f"the {bound} that {commons_requirement(service)} allows"
            + (" — the same release, already tested" if tested else "")
        )
        if not tested:
            session.run("pytest", str(service), "-q", *session.posargs, env=env)
    return seen
