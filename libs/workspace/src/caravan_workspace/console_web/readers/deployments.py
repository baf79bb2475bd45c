"""Deployments: what each target runs, as stage 14 records it. Stage 14's own record comes from
the state file; each target's deployment from ``<state>/deploy/<target>.json`` (written by
``invoke deploy --target docker|nomad|k8s``: the target, when, and the programs it runs with their
versions); a Nomad cluster named by ``NOMAD_ADDR`` gets a link to its UI."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.state import StageRecord

TARGETS = ("docker", "nomad", "k8s")
DEPLOY_DIR = "deploy"
DEPLOYMENT_STAGE = 14


@dataclass(frozen=True)
class TargetView:
    target: str
    deployed_at: str
    items: list[dict[str, str]]  # one a program/job/workload: name, version, image, state, ...
    problem: str = ""


@dataclass(frozen=True)
class DeploymentsView:
    stage: StageRecord
    targets: list[TargetView]
    built: bool  # stage 14 has recorded a deployment in the state folder
    nomad_ui: str


def _target(path: Path) -> TargetView:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return TargetView(path.stem, "", [], f"unreadable: {exc}")
    if not isinstance(doc, dict):
        return TargetView(path.stem, "", [], "not a JSON object")
    listed: list[object] = next(
        (doc[k] for k in ("programs", "jobs", "workloads", "items") if isinstance(doc.get(k), list)), []
    )
    items = [{str(k): str(v) for k, v in item.items()} for item in listed if isinstance(item, dict)]
    return TargetView(str(doc.get("target", path.stem)), str(doc.get("deployed_at", "")), items)


def deployments_view(state_dir: Path, stage: StageRecord) -> DeploymentsView:
    folder = state_dir / DEPLOY_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    nomad = os.environ.get("NOMAD_ADDR", "").rstrip("/")
    return DeploymentsView(
        stage=stage,
        targets=[_target(p) for p in files],
        built=bool(files),
        nomad_ui=f"{nomad}/ui/jobs" if nomad else "",
    )
