"""The kustomize tree: `kubectl kustomize` of each overlay passes kubernetes-validate --strict for
several Kubernetes versions (bundled schemas, offline); the policy holds; the NetworkPolicies
allow exactly the foundation's flows; `invoke deploy --target k8s` without a cluster says what it
would apply and fails."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caravan_workspace.render import checks
from caravan_workspace.render.model import load_deployment, load_environment

REPO = Path(__file__).resolve().parents[4]
INVOKE = Path(sys.executable).with_name("invoke")


@pytest.fixture(scope="module", params=["dev", "prod"])
def overlay(request):
    return request.param, checks.kustomize(REPO, request.param)


def test_each_overlay_is_valid_for_three_kubernetes_versions(overlay):
    env, docs = overlay
    assert len(checks.K8S_VERSIONS) >= 3
    assert checks.schema_problems(docs, env, checks.K8S_VERSIONS) == []
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Namespace", "Deployment", "Service", "ServiceAccount", "ConfigMap",
                     "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "NetworkPolicy", "Ingress"}  # fmt: skip
    assert "Secret" not in kinds  # referenced only


def test_strict_validation_catches_an_unknown_field(overlay):
    env, docs = overlay
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    problems = checks.schema_problems([broken], env, ("1.32.0",))
    assert len(problems) == 1 and "readinesProbe" in problems[0]


def test_policy_probes_limits_non_root_and_autoscaling(overlay):
    env, docs = overlay
    deployment = load_deployment(REPO)
    assert checks.policy_problems(docs, deployment, load_environment(REPO, env)) == []
    for d in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        declared = deployment.deployables[d["metadata"]["name"]].scaling
        assert (d["spec"]["minReplicas"], d["spec"]["maxReplicas"]) == (declared.min, declared.max)


def test_policy_check_fails_on_a_root_container_without_probes(overlay):
    env, docs = overlay
    docs = copy.deepcopy(docs)
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "svc-b")
    pod = dep["spec"]["template"]["spec"]
    del pod["containers"][0]["readinessProbe"], pod["containers"][0]["resources"]["limits"]
    pod["securityContext"]["runAsNonRoot"] = False
    pod["containers"][0]["securityContext"]["runAsNonRoot"] = False
    problems = checks.policy_problems(docs, load_deployment(REPO), load_environment(REPO, env))
    assert problems == [
        f"{env}: Deployment svc-b: readiness probe is not on /health/ready",
        f"{env}: Deployment svc-b: no cpu and memory limits",
        f"{env}: Deployment svc-b: may run as root",
    ]


def test_every_file_a_container_names_is_a_secret_mounted_read_only(overlay):
    """svc-b's secret (order ids) comes from one Secret for the whole Deployment: every replica
    mounts the same ``svc-b-secret``."""
    _, docs = overlay
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "svc-b")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "svc-b-config")
    pod = dep["spec"]["template"]["spec"]
    assert config["data"]["CARAVAN_SECRET_KEY_FILE"] == "/secrets/secret.key"
    assert checks.k8s_file_problems(config["data"], pod, "svc-b") == []
    sources = pod["volumes"][0]["projected"]["sources"]
    assert {
        "secret": {"name": "svc-b-secret", "items": [{"key": "secret.key", "path": "secret.key"}]}
    } in sources
    pod = copy.deepcopy(pod)
    pod["volumes"][0]["projected"]["sources"] = [s for s in sources if s["secret"]["name"] != "svc-b-secret"]
    assert checks.k8s_file_problems(config["data"], pod, "svc-b") == [
        "svc-b: CARAVAN_SECRET_KEY_FILE=/secrets/secret.key is not a Secret item mounted read-only"
    ]
    pod["containers"][0]["volumeMounts"][0]["readOnly"] = False
    assert len(checks.k8s_file_problems(config["data"], pod, "svc-b")) == 3


def test_network_policies_allow_exactly_the_foundation_flows(overlay):
    env, docs = overlay
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    ingress, egress, deny = checks.network_flows(policies)
    assert deny
    assert ingress == {
        ("client", "gateway"), ("monitoring", "gateway"),
        ("gateway", "svc-a"), ("svc-b", "svc-a"), ("monitoring", "svc-a"),
        ("gateway", "svc-b"), ("monitoring", "svc-b"),
        ("gateway", "svc-c"), ("svc-b", "svc-c"), ("monitoring", "svc-c"),
    }  # fmt: skip
    assert egress == {
        ("gateway", "svc-a"), ("gateway", "svc-b"), ("gateway", "svc-c"),
        ("svc-b", "svc-a"), ("svc-b", "svc-c"),
        ("svc-a", "svc-a-db"), ("svc-b", "svc-b-db"), ("svc-c", "svc-c-db"),
        *((name, "dns") for name in ("gateway", "svc-a", "svc-b", "svc-c")),
    }  # fmt: skip
    # one more allowed peer, or one flow less, is caught
    wider = copy.deepcopy(policies)
    svc_c = next(p for p in wider if p["metadata"]["name"] == "svc-c")
    svc_c["spec"]["ingress"].append(
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "svc-a"}}}]}
    )
    svc_c["spec"]["ingress"] = [r for r in svc_c["spec"]["ingress"] if "svc-b" not in str(r)]
    assert checks.network_flow_problems(wider, load_deployment(REPO), load_environment(REPO, env)) == [
        f"{env}: NetworkPolicy ingress svc-a → svc-c is not a foundation flow",
        f"{env}: foundation flow svc-b → svc-c has no ingress rule",
    ]


def test_graceful_stop_is_longer_than_the_drain(overlay):
    env, docs = overlay
    drain = load_environment(REPO, env).drain_s
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > drain + 5
        assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        config = next(
            d
            for d in docs
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{dep['metadata']['name']}-config"
        )
        assert config["data"]["CARAVAN_SHUTDOWN_TIMEOUT_S"] == str(drain)


def test_deploy_k8s_without_a_cluster_prints_the_plan_and_fails(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {}}]
current-context: none
""")
    done = subprocess.run([str(INVOKE), "deploy", "--target", "k8s", "--env", "prod"], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)})  # fmt: skip
    assert done.returncode == 1
    assert "would apply k8s/overlays/prod to namespace caravan (server-side), in this order:" in done.stdout
    lines = done.stdout.splitlines()
    order = [
        line.split(":")[0].strip() for line in lines if line.startswith("  ") and not line.startswith("    ")
    ]
    assert order == ["shared", "svc-a, svc-c", "svc-b", "gateway"]
    assert "then kubectl rollout status deployment/svc-b" in done.stdout
    assert done.stderr.strip().startswith("error: no Kubernetes cluster reachable (kubectl:")
    assert done.stderr.strip().endswith("nothing applied")
