"""Supply chain: every deployable's resolved dependencies audited with pip-audit (PyPI's
vulnerability data) and described by a CycloneDX SBOM — the ``sbom`` nox session writes the SBOMs
(offline: it needs only the package index), the ``supply_chain`` session audits too (it needs
PyPI's JSON API, which the package mirrors of a closed network do not serve; there it fails, it
never passes unaudited).

For each deployable (the gateway and every service) the dependencies are resolved from its
``pyproject.toml`` exactly as it is installed (``uv pip compile``, caravan-commons from the
workspace index); the pinned list, the pip-audit report and the SBOM go to the output folder
(``build/sbom/``, kept by CI as artefacts, git-ignored). A known vulnerability with a fixed version
fails the run, naming the package, the advisory and the fix; one without a fix is listed as a
warning. A dependency the audit could not look up (no vulnerability data reachable) fails the run
too — an audit that did not happen never passes. The workspace's own packages (``caravan-*``,
published to the workspace index only) are in the SBOM but not looked up on PyPI.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan_workspace.commons_bounds import index_env
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index

OWN_PREFIX = "caravan-"


@dataclass
class Findings:
    fixable: list[str] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)


def read_report(report: dict[str, Any]) -> Findings:
    """Sort a ``pip-audit -f json`` report into what fails the run and what is only shown."""
    found = Findings()
    for dep in report.get("dependencies", []):
        name = dep.get("name", "?")
        if "skip_reason" in dep:
            found.not_audited.append(f"{name}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns", []):
            line = f"{name} {dep.get('version', '?')}: {vuln.get('id', '?')}"
            if vuln.get("fix_versions"):
                found.fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                found.unfixed.append(f"{line} (no fixed version yet)")
    return found


def third_party(requirements: str) -> str:
    """The pinned lines of ``uv pip compile`` output that PyPI can know (not ours)."""
    keep = []
    for line in requirements.splitlines():
        text = line.strip()
        if text and not text.startswith("#") and not text.lower().startswith(OWN_PREFIX):
            keep.append(text)
    return "\n".join(keep) + "\n"


def _uv() -> str:
    local = Path(sys.executable).parent / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not installed (./caravan installs it into .venv)")
    return found


def audit_deployables(
    session: Any, root: Path, deployables: Iterable[str], out_dir: Path, *, audit: bool = True
) -> None:
    ctx = Context.at(root)
    if not index.health_ok(index.index_port(ctx)):
        session.error(
            f"the workspace package index is not running at {index.index_url(ctx)}: run `invoke stage 3`"
        )
    env = index_env(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for folder in deployables:
        name = Path(folder).name
        pinned = out_dir / f"{name}.requirements.txt"
        session.run(
            _uv(), "pip", "compile", str(root / folder / "pyproject.toml"), "--quiet", "--no-header",
            "--python-version", "3.11", "-o", str(pinned), env=env, external=True,
        )  # fmt: skip
        session.run(
            "cyclonedx-py", "requirements", str(pinned), "--pyproject", str(root / folder / "pyproject.toml"),
            "--of", "JSON", "-o", str(out_dir / f"{name}.cdx.json"),
        )  # fmt: skip
        audited = out_dir / f"{name}.audited.txt"
        audited.write_text(third_party(pinned.read_text()))
        if not audit:
            session.log(f"{name}: {len(audited.read_text().splitlines())} dependencies; SBOM {name}.cdx.json")
            continue
        report_path = out_dir / f"{name}.pip-audit.json"
        session.run(
            "pip-audit", "-r", str(audited), "--no-deps", "--disable-pip", "--progress-spinner", "off",
            "-f", "json", "-o", str(report_path), success_codes=[0, 1],
        )  # fmt: skip
        found = read_report(json.loads(report_path.read_text()))
        for line in found.unfixed:
            session.warn(f"{name}: {line}")
        failures += [f"{name}: {line}" for line in found.fixable]
        if found.not_audited:
            failures.append(
                f"{name}: {len(found.not_audited)} dependencies could not be audited "
                f"(is PyPI's vulnerability data reachable?), e.g. {found.not_audited[0]}"
            )
        session.log(
            f"{name}: {len(audited.read_text().splitlines())} dependencies audited; SBOM {name}.cdx.json"
        )
    if failures:
        session.error("supply chain: " + "; ".join(failures))
