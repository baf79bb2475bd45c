"""Rendering a new service from the copier template in libs/commons/template.

``render_service`` validates the name first (nothing is written for a bad one), renders into a
hidden temporary folder beside the destination and renames it into place only when rendering
succeeded, so a failure never leaves a half-written service behind.

``check_service`` installs a rendered service in a fresh uv virtualenv — caravan-commons from the
workspace index only, as the service's pyproject says — and runs its tests: the stage 3 gate
"template ready" and the template's own integration test both use it.
"""

from __future__ import annotations

import keyword
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.release import COMMONS, project_version
from caravan_workspace.runtime import index
from caravan_workspace.services import NAME_RE

TEMPLATE = "libs/commons/template"
MAX_NAME = 40
# import names a service package must not take (they would shadow the workspace's own packages)
RESERVED_PACKAGES = {"caravan_commons", "caravan_workspace", "caravan_gateway", "tests", "test", "conftest"}


class TemplateError(Exception):
    """A bad service name or a failed rendering; the message is one line."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    title: str
    lane: str


def template_dir(root: Path) -> Path:
    return root / TEMPLATE


def commons_range(version: str) -> str:
    """Every minor and patch release of the current major: ``0.3.1`` → ``>=0.3,<1``."""
    match = re.match(r"^(\d+)\.(\d+)", version)
    if not match:
        raise TemplateError(f"caravan-commons version {version!r} is not semver")
    major, minor = int(match.group(1)), int(match.group(2))
    return f">={major}.{minor},<{major + 1}"


def validate(
    name: str, *, root: Path, dest_parent: Path, title: str | None = None, lane: str | None = None
) -> ServiceSpec:
    """Refuse a name that is not a clean service name, or that is taken. Writes nothing."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_RE.match(name):
        raise TemplateError(
            f"{shown!r} is not a valid service name: lower-case words of letters and digits joined by '-', "
            f"starting with a letter, at most {MAX_NAME} characters (e.g. svc-d)"
        )
    package = name.replace("-", "_")
    if not package.isidentifier() or keyword.iskeyword(package):
        raise TemplateError(f"{name!r} does not give a Python package name ({package!r})")
    if package in sys.stdlib_module_names or package in RESERVED_PACKAGES:
        raise TemplateError(f"{name!r} would shadow the module {package!r}: choose another name")
    target = dest_parent / name
    if target.exists() or target.is_symlink():
        raise TemplateError(f"{name!r} already exists ({target}): choose another name")
    for declared in sorted(root.glob("*/service.toml")):
        try:
            data = tomllib.loads(declared.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if data.get("name") == name or data.get("package") == package:
            raise TemplateError(
                f"{name!r} is taken by the service declared in {declared.parent.name}/service.toml"
            )
    return ServiceSpec(name=name, package=package, title=title or name, lane=lane or name)


def render_service(
    root: Path,
    name: str,
    *,
    dest_parent: Path | None = None,
    title: str | None = None,
    lane: str | None = None,
    index_url: str | None = None,
) -> Path:
    """Render service ``name`` into ``dest_parent`` (the workspace root by default); returns its folder."""
    parent = (dest_parent or root).resolve()
    spec = validate(name, root=root, dest_parent=parent, title=title, lane=lane)
    source = template_dir(root)
    if not (source / "copier.yml").is_file():
        raise TemplateError(f"the service template is missing: {source}/copier.yml")
    answers = {
        "name": spec.name,
        "package": spec.package,
        "title": spec.title,
        "lane": spec.lane,
        "commons_range": commons_range(project_version(root / COMMONS)),
        "index_url": index_url or index.default_index_url(),
    }
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.rendering-", dir=parent))
    try:
        from copier import run_copy

        run_copy(
            str(source),
            str(staging),
            data=answers,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=False,
            vcs_ref=None,
        )
        target = parent / name
        if target.exists():
            raise TemplateError(f"{name!r} appeared while rendering ({target}); nothing was changed")
        staging.rename(target)
    except TemplateError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise TemplateError(f"rendering {name} failed: {type(exc).__name__}: {exc}") from exc
    return target


@dataclass(frozen=True)
class CheckResult:
    passed: int
    summary: str
    commons_version: str


def check_service(ctx_index_env: dict[str, str], service: Path, venv: Path) -> CheckResult:
    """Install ``service`` into a fresh virtualenv (commons from the workspace index, as its pyproject
    says; ``ctx_index_env`` carries ``UV_INDEX=workspace=<url>``) and run its tests."""
    uv = index.uv_bin()
    env = dict(ctx_index_env)

    def run(cmd: list[str], what: str, cwd: Path = service) -> str:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            detail = next((ln for ln in reversed(lines) if ln.strip()), f"exit {proc.returncode}")
            raise TemplateError(f"{what} failed: {detail.strip()}")
        return proc.stdout

    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    test_deps = [d for d in pyproject.get("dependency-groups", {}).get("test", []) if isinstance(d, str)]
    run([uv, "venv", "--quiet", "--no-config", str(venv)], "uv venv")
    python = str(venv / "bin" / "python")
    run(
        [uv, "pip", "install", "--quiet", "--no-config", "-p", python, "-e", str(service), *test_deps],
        "installing the service",
    )
    commons = run(
        [python, "-c", "import importlib.metadata as m; print(m.version('caravan-commons'))"],
        "reading the installed caravan-commons version",
    ).strip()
    out = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], "the service's tests")
    summary = next((ln for ln in reversed(out.strip().splitlines()) if " passed" in ln), "")
    match = re.search(r"(\d+) passed", summary)
    if not match or int(match.group(1)) == 0 or "failed" in summary or "error" in summary:
        raise TemplateError(f"the service's tests did not pass: {summary or 'no summary'}")
    return CheckResult(passed=int(match.group(1)), summary=summary.strip("= "), commons_version=commons)
