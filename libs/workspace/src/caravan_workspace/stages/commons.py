"""Stage 3: caravan-commons published to the workspace index, and the service template.

Actions: ``index.ensure`` (pypiserver under the workspace supervisord) and ``commons.publish``
(publishes the current libs/commons version unless the index already serves it).
Gates: ``commons.wheel_published`` and ``commons.template_ready``.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from caravan_workspace import release
from caravan_workspace import template as templates
from caravan_workspace.gate_cache import Inputs
from caravan_workspace.registry import ActionError, ActionResult, Context, GateFailure, action, gate
from caravan_workspace.runtime import index

PROBE_SERVICE = "svc-template-probe"
REQUIRES_PROBE = "import importlib.metadata as m; print('\\n'.join(m.requires('caravan-commons') or []))"


@action("index.ensure")
def ensure_index(ctx: Context) -> ActionResult:
    try:
        state = index.ensure_index(ctx)
    except index.PackageIndexError as exc:
        raise ActionError(str(exc)) from exc
    return ActionResult(changed=state.changed, detail=state.detail)


@action("commons.publish")
def publish_commons(ctx: Context) -> ActionResult:
    """Publish the current version if the index does not serve it yet (tests: ``nox -s commons``)."""
    try:
        version = release.check_version(ctx)
        index.ensure_index(ctx)
        if release.is_published(ctx, version):
            return ActionResult(changed=False, detail=f"caravan-commons {version} already on the index")
        result = release.release(ctx, skip_tests=True)
    except (release.ReleaseError, index.PackageIndexError) as exc:
        raise ActionError(str(exc)) from exc
    return ActionResult(
        changed=True, detail=f"published caravan-commons {result.version} ({', '.join(result.files)})"
    )


def _scratch(ctx: Context) -> tempfile.TemporaryDirectory[str]:
    parent = ctx.state_dir / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="gate-", dir=parent)


def _published_version(ctx: Context) -> tuple[str, str]:
    """The current commons version and the index URL, failing the gate if it is not served."""
    try:
        version = release.project_version(release.commons_dir(ctx))
    except release.ReleaseError as exc:
        raise GateFailure(str(exc), fix="restore libs/commons/pyproject.toml") from exc
    url = index.index_url(ctx)
    if not index.health_ok(index.index_port(ctx)):
        raise GateFailure(f"the workspace package index is not running at {url}", fix="invoke stage 3")
    try:
        served = index.published_versions(url, release.DIST_NAME)
    except index.PackageIndexError as exc:
        raise GateFailure(str(exc), fix="invoke stage 3") from exc
    if version not in served:
        listed = ", ".join(sorted(served)) or "none"
        raise GateFailure(
            f"the index serves caravan-commons {listed}, not the current {version}",
            fix="invoke commons.release",
        )
    return version, url


def _run(cmd: list[str], env: dict[str, str], what: str, fix: str) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        detail = next((ln.strip() for ln in reversed(lines) if ln.strip()), f"exit {proc.returncode}")
        raise GateFailure(f"{what} failed: {detail}", fix=fix)
    return proc.stdout


def served_inputs(ctx: Context) -> Inputs:
    """What the commons gates read: libs/commons (sources, project file, version) and the files
    the running index serves for caravan-commons — asked of the index every time, so a gate
    reused from the cache still finds the index up and serving exactly what it served then."""
    commons = release.commons_dir(ctx)
    served = index.listed_files(index.index_url(ctx), release.DIST_NAME)  # raises when it is down
    return Inputs(
        files=[commons / "src", commons / "pyproject.toml"],
        values={"commons": release.project_version(commons), "served": "\n".join(sorted(served))},
    )


def template_inputs(ctx: Context) -> Inputs:
    """The template gate's inputs: the commons gates' plus the template and its renderer."""
    served = served_inputs(ctx)
    return Inputs(
        files=[*served.files, templates.template_dir(ctx.root), Path(templates.__file__)],
        values=served.values,
    )


@gate("commons.wheel_published", inputs=served_inputs)
def wheel_published(ctx: Context) -> str:
    """The index serves the current version, and a fresh virtualenv installs it from that index alone."""
    version, url = _published_version(ctx)
    uv = index.uv_bin()
    env = index.uv_env()  # no index settings inherited from the caller's environment
    fix = "invoke commons.release"
    with _scratch(ctx) as tmp:
        venv = Path(tmp) / "venv"
        python = str(venv / "bin" / "python")
        _run([uv, "venv", "--quiet", "--no-config", str(venv)], env, "creating a virtualenv", fix)
        # caravan-commons itself: the workspace index is the only index uv may use
        _run(
            [uv, "pip", "install", "--quiet", "--no-config", "-p", python, "--default-index", url,
             "--no-deps", f"{release.DIST_NAME}=={version}"],
            env, f"installing caravan-commons {version} from {url} alone", fix,
        )  # fmt: skip
        # its own dependencies (litestar, msgspec, ...) come from the default public index
        requires = _run(
            [python, "-c", REQUIRES_PROBE],
            env, "reading caravan-commons' dependencies", fix,
        )  # fmt: skip
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requires)
        _run(
            [uv, "pip", "install", "--quiet", "--no-config", "-p", python, "-r", str(reqs)],
            env, "installing caravan-commons' dependencies", fix,
        )  # fmt: skip
        probe = (
            "import caravan_commons, caravan_commons.app as a; print(caravan_commons.__version__, a.__file__)"
        )
        out = _run([python, "-c", probe], env, "importing caravan_commons", fix).split()
        if len(out) != 2 or out[0] != version or not out[1].startswith(str(venv)):
            raise GateFailure(f"the fresh virtualenv imported {' '.join(out) or 'nothing'}", fix=fix)
        changed = differing_files(release.commons_dir(ctx) / "src" / "caravan_commons", Path(out[1]).parent)
    if changed:
        raise GateFailure(
            f"libs/commons changed since caravan-commons {version} was published ({', '.join(changed[:3])}"
            f"{', ...' if len(changed) > 3 else ''}): a published version never changes",
            fix="bump libs/commons' version, add its CHANGELOG section, invoke commons.release",
        )
    return (
        f"caravan-commons {version} served by {url}; a fresh virtualenv installed it from that index "
        "alone; it matches libs/commons"
    )


def differing_files(source: Path, installed: Path) -> list[str]:
    """Files of the package that differ between the source tree and an installed copy."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file()
            and "__pycache__" not in p.parts
            and not any(part.startswith(".") for part in p.relative_to(root).parts)  # caches
            and p.suffix not in (".pyc", ".pyo")
        }

    ours, theirs = files(source), files(installed)
    return sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))


@gate("commons.template_ready", inputs=template_inputs)
def template_ready(ctx: Context) -> str:
    """A service rendered into a temporary folder installs (commons from the index) and passes its tests."""
    _published_version(ctx)
    fix = "fix libs/commons/template, then invoke stage 3"
    with _scratch(ctx) as tmp:
        try:
            service = templates.render_service(ctx.root, PROBE_SERVICE, dest_parent=Path(tmp))
            result = templates.check_service(index.uv_env(ctx), service, Path(tmp) / "venv")
        except templates.TemplateError as exc:
            raise GateFailure(str(exc), fix=fix) from exc
    return (
        f"{PROBE_SERVICE} rendered and passed its tests ({result.summary}) "
        f"with caravan-commons {result.commons_version} from the workspace index"
    )
