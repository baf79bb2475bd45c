"""`invoke render`: Nomad jobs, Consul config entries and the kustomize tree, rendered from the one
source (service.toml, foundation/foundation.toml, deploy/environments/*.toml) and committed.

:func:`render` returns every file (path relative to the workspace → text); :func:`write` writes
them and removes rendered files the source no longer produces; :func:`drift` lists the files that
differ from a fresh render — a test and the stage 14 gates fail on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from caravan_workspace.render import consul, k8s, nomad
from caravan_workspace.render.model import Deployment, environment_names, load_deployment, load_environment

NOMAD_DIR = Path("nomad")
K8S_DIR = Path("k8s")
CONSUL_DIR = NOMAD_DIR / "consul"
#: Files under nomad/ and k8s/ that are written by hand, never by the renderer.
HAND_WRITTEN = {NOMAD_DIR / "README.md", K8S_DIR / "README.md"}


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _yaml(*docs: object) -> str:
    header = "# Rendered by `invoke render`; do not edit: change the source and render again.\n"
    return header + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)


def render(root: Path, deployment: Deployment | None = None) -> dict[Path, str]:
    deployment = deployment or load_deployment(root)
    files: dict[Path, str] = {}
    envs = [load_environment(root, name) for name in environment_names(root)]
    for env in envs:
        for name in deployment.order:
            d = deployment.deployables[name]
            files[NOMAD_DIR / env.name / f"{name}.nomad.hcl"] = nomad.hcl_text(d, deployment, env)
            files[NOMAD_DIR / env.name / "json" / f"{name}.json"] = _json(nomad.api_job(d, deployment, env))
    for file, entry in consul.entries(deployment).items():
        files[CONSUL_DIR / file] = _json(entry)
    base_env = next(e for e in envs if e.name == "dev") if any(e.name == "dev" for e in envs) else envs[0]
    files[K8S_DIR / "base" / "kustomization.yaml"] = _yaml(k8s.base_kustomization(deployment))
    files[K8S_DIR / "base" / "default-deny.yaml"] = _yaml(k8s.default_deny())
    for name in deployment.order:
        files[K8S_DIR / "base" / f"{name}.yaml"] = _yaml(
            *k8s.manifests(deployment.deployables[name], deployment, base_env)
        )
    for env in envs:
        files[K8S_DIR / "overlays" / env.name / "kustomization.yaml"] = _yaml(k8s.overlay(deployment, env))
        files[K8S_DIR / "overlays" / env.name / "namespace.yaml"] = _yaml(k8s.namespace(env))
    return files


def rendered_on_disk(root: Path) -> set[Path]:
    found = set()
    for folder in (NOMAD_DIR, K8S_DIR):
        for path in (root / folder).rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and rel not in HAND_WRITTEN:
                found.add(rel)
    return found


def write(root: Path, files: dict[Path, str]) -> list[Path]:
    """Write what changed and remove stale rendered files; returns the paths touched."""
    touched = []
    for rel, text in sorted(files.items()):
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        touched.append(rel)
    for rel in sorted(rendered_on_disk(root) - set(files)):
        (root / rel).unlink()
        touched.append(rel)
    return touched


def drift(root: Path, files: dict[Path, str] | None = None) -> list[str]:
    """Rendered files that differ from a fresh render: missing, changed or stale."""
    files = files if files is not None else render(root)
    problems = []
    for rel, text in sorted(files.items()):
        path = root / rel
        if not path.exists():
            problems.append(f"{rel} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel} differs from a fresh render")
    problems += [f"{rel} is no longer rendered" for rel in sorted(rendered_on_disk(root) - set(files))]
    return problems
