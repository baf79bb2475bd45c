"""Stage 14's gates deploy.nomad and deploy.k8s: they pass on the committed tree and fail — naming
the file and the fix — when it differs from a fresh render or breaks a rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caravan_workspace import render
from caravan_workspace.registry import Context, GateFailure
from caravan_workspace.stages import deploy_manifests

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for folder in ("nomad", "k8s", "deploy", "foundation", "svc-a", "svc-b", "svc-c", "shared/gateway"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    return root


def test_both_gates_pass_on_the_committed_tree(tmp_path):
    ctx = Context(root=REPO, state_dir=tmp_path)
    assert "8 jobs and 9 Consul config entries" in deploy_manifests.nomad_jobs_valid(ctx)
    assert "valid for Kubernetes 1.30.0, 1.32.0, 1.34.0" in deploy_manifests.k8s_manifests_valid(ctx)


def test_a_hand_edit_fails_the_gate_with_the_fix(copy, tmp_path):
    job = copy / "nomad" / "dev" / "svc-b.nomad.hcl"
    job.write_text(job.read_text().replace("max     = 3", "max     = 30"))
    with pytest.raises(GateFailure) as failed:
        deploy_manifests.nomad_jobs_valid(Context(root=copy, state_dir=tmp_path))
    assert failed.value.reason.startswith("Nomad jobs: nomad/dev/svc-b.nomad.hcl differs from a fresh render")
    assert failed.value.fix == "invoke render"


def test_a_source_that_breaks_a_rule_fails_the_gate(copy, tmp_path):
    # an environment asking for more instances than svc-a/service.toml's bound (3), rendered
    env = copy / "deploy" / "environments" / "prod.toml"
    env.write_text(env.read_text().replace("svc-a = 2", "svc-a = 7"))
    render.write(copy, render.render(copy))
    with pytest.raises(GateFailure) as failed:
        deploy_manifests.nomad_jobs_valid(Context(root=copy, state_dir=tmp_path))
    assert "task group count must not be greater than maximum count in scaling policy" in failed.value.reason
    assert failed.value.fix == "fix the source, then invoke render"
