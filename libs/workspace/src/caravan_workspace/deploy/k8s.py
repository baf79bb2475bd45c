"""`invoke deploy --target k8s`: ``kubectl kustomize`` of the environment's overlay, then — per
dependency level (svc-a and svc-c, then svc-b, then the gateway; the namespace and the
default-deny policy first) — a server-side apply (``kubectl apply --server-side``) and
``kubectl rollout status`` of each Deployment before the next level.

Without a reachable cluster it prints what it would apply and stops with exit 1 saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from caravan_workspace import render
from caravan_workspace.deploy import DeployError, prepare
from caravan_workspace.render import checks
from caravan_workspace.render.k8s import NAME_LABEL

Out = Callable[[str], None]
FIELD_MANAGER = "caravan"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        raise DeployError("kubectl is not installed")
    return subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )


def cluster_unreachable() -> str | None:
    """Why no cluster can be reached (None when one answers)."""
    done = kubectl("version", "--request-timeout=5s", "-o", "json", timeout=30)
    if done.returncode == 0 and '"serverVersion"' in done.stdout:
        return None
    return " ".join((done.stderr or done.stdout).split())[:300] or "kubectl version did not answer"


def batches(
    docs: list[dict[str, Any]], levels: tuple[tuple[str, ...], ...]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The objects to apply, in order: what belongs to no deployable first (namespace, default
    deny), then each dependency level's objects."""
    member = {name: i for i, level in enumerate(levels) for name in level}
    out: list[tuple[str, list[dict[str, Any]]]] = [("shared", [])]
    out += [(", ".join(level), []) for level in levels]
    for doc in docs:
        owner = doc.get("metadata", {}).get("labels", {}).get(NAME_LABEL)
        out[member[owner] + 1 if owner in member else 0][1].append(doc)
    return out


def deploy(root: Path, env_name: str, *, tag: str | None, dry_run: bool, out: Out) -> None:
    deployment, env = prepare(root, env_name, render.K8S_DIR)
    try:
        docs = checks.kustomize(root, env_name)
    except RuntimeError as exc:
        raise DeployError(str(exc)) from exc
    if tag:
        for doc in docs:
            if doc["kind"] == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    c["image"] = f"{c['image'].rpartition(':')[0]}:{tag}"
    plan = batches(docs, deployment.levels)
    why = None if dry_run else cluster_unreachable()
    if dry_run or why:
        out(f"would apply k8s/overlays/{env.name} to namespace {env.namespace} (server-side), in this order:")
        for label, batch in plan:
            out(f"  {label}: " + ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in batch))
            rollouts = [d["metadata"]["name"] for d in batch if d["kind"] == "Deployment"]
            if rollouts:
                out(f"    then kubectl rollout status deployment/{' deployment/'.join(rollouts)}")
        if why:
            raise DeployError(f"no Kubernetes cluster reachable (kubectl: {why}); nothing applied")
        return
    for label, batch in plan:
        text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in batch)
        done = kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=text)
        if done.returncode != 0:
            raise DeployError(f"kubectl apply ({label}): {' '.join(done.stderr.split())[:300]}")
        out(f"applied {label}: {len(batch)} objects")
        for d in batch:
            if d["kind"] != "Deployment":
                continue
            name = d["metadata"]["name"]
            done = kubectl("rollout", "status", f"deployment/{name}", "-n", env.namespace, "--timeout=10m")
            if done.returncode != 0:
                raise DeployError(f"{name}: rollout did not finish: {' '.join(done.stderr.split())[:300]}")
            out(f"{name}: rolled out")
    out(f"deployed {len(deployment.order)} deployables to Kubernetes namespace {env.namespace}")
