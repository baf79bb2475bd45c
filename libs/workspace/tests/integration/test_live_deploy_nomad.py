"""Live: the rendered jobs and config entries against real agents. Runs only when NOMAD_ADDR and
CONSUL_HTTP_ADDR point at them (`nomad agent -dev`, `consul agent -dev`); a dry run only, so it
registers nothing. The contract tests (test_contract_deploy_nomad.py) run everywhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from caravan_workspace.deploy.nomad import NomadDeploy, Waits, clients, deploy

REPO = Path(__file__).resolve().parents[4]

pytestmark = pytest.mark.skipif(
    not (os.environ.get("NOMAD_ADDR") and os.environ.get("CONSUL_HTTP_ADDR")),
    reason="NOMAD_ADDR / CONSUL_HTTP_ADDR not set: live tests need real agents "
    "(nomad agent -dev, consul agent -dev)",
)


def _subset(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where the server's parse of our HCL differs from our JSON (server defaults aside)."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [path]
        return [p for k, v in ours.items() for p in _subset(v, theirs.get(k), f"{path}.{k}")]
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for p in _subset(a, b, f"{path}[{i}]")
        ]
    return [] if ours == theirs else [path]


def test_live_nomad_parses_our_hcl_into_our_json():
    import json

    nomad, _ = clients()
    for name in ("gateway", "svc-a", "svc-b", "svc-c"):
        hcl = (REPO / "nomad" / "dev" / f"{name}.nomad.hcl").read_text()
        parsed = nomad.jobs.parse(hcl, canonicalize=False)
        ours = json.loads((REPO / "nomad" / "dev" / "json" / f"{name}.json").read_text())["Job"]
        assert _subset(ours, parsed) == [], name


def test_live_dry_run_validates_and_plans_every_job():
    lines: list[str] = []
    nomad, consul = clients()
    deploy(REPO, "dev", tag=None, dry_run=True, out=lines.append,
           deployer=NomadDeploy(nomad, consul, lines.append, Waits(poll_s=1)))  # fmt: skip
    assert [line.split(":")[0] for line in lines if line.startswith("plan ")] == [
        "plan svc-a", "plan svc-c", "plan svc-b", "plan gateway"]  # fmt: skip
