"""The checks behind the stage 14 gates and the tests, each on a fresh render:

- :func:`nomad_problems` — the committed files equal a fresh render; every job parses with
  python-hcl2, every block and attribute fits the jobspec structure, Nomad's own validation rules
  hold, the HCL and the JSON form say the same, the JSON form uses only API keys with durations in
  nanoseconds, the scaling block carries service.toml's bounds and a target-value policy, and the
  Consul config entries fit their structure.
- :func:`k8s_problems` — ``kubectl kustomize`` of each overlay passes kubernetes-validate
  ``--strict`` for several Kubernetes minor versions, and the policy holds: probes on the health
  paths, limits, non-root, read-only root, no capabilities, preStop and a grace period longer than
  the drain, an HPA (autoscaling/v2) with service.toml's bounds, and NetworkPolicies that allow
  exactly the foundation's flows (plus DNS) — no more, no less.
- :func:`parity_problems` — Nomad jobs, Kubernetes manifests and service.toml agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from caravan_workspace import render
from caravan_workspace.render import consul, jobspec, k8s
from caravan_workspace.render.model import (
    PORT,
    Deployment,
    Environment,
    environment_names,
    load_deployment,
    load_environment,
)

#: Kubernetes minor versions the manifests are validated against (bundled, offline schemas).
K8S_VERSIONS = ("1.30.0", "1.32.0", "1.34.0")


def _api_keys() -> set[str]:
    keys = {"ID", "Name"}
    for spec in jobspec.SPECS.values():
        keys.add(spec.api)
        keys |= {api for api, _ in spec.attrs.values()}
        if spec.label_key:
            keys.add(spec.label_key)
    return keys


def api_problems(job: dict[str, Any], where: str) -> list[str]:
    """Keys outside the API structs (Nomad would drop them silently) and durations that are not
    integer nanoseconds (Nomad answers 400)."""
    known = _api_keys()
    durations = {api for s in jobspec.SPECS.values() for api, kind in s.attrs.values() if kind == "dur"}
    problems = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for i, x in enumerate(node):
                walk(x, f"{path}[{i}]")
        elif isinstance(node, dict):
            for key, value in node.items():
                if key not in known:
                    problems.append(f"{where}: {path}.{key} is not a Nomad API key")
                    continue
                if key in durations and (not isinstance(value, int) or isinstance(value, bool)):
                    problems.append(f"{where}: {path}.{key} = {value!r} must be integer nanoseconds")
                if key not in ("Config", "Env", "Meta", "Policy"):  # free-form maps
                    walk(value, f"{path}.{key}")

    walk(job, "")
    return problems


def nomad_problems(root: Path, files: dict[Path, str] | None = None) -> tuple[list[str], str]:
    import hcl2

    files = files if files is not None else render.render(root)
    problems = [p for p in render.drift(root, files) if p.startswith(str(render.NOMAD_DIR))]
    deployment = load_deployment(root)
    jobs = 0
    for env_name in environment_names(root):
        env = load_environment(root, env_name)
        for name in deployment.order:
            hcl_path = render.NOMAD_DIR / env_name / f"{name}.nomad.hcl"
            json_path = render.NOMAD_DIR / env_name / "json" / f"{name}.json"
            where = str(hcl_path)
            try:
                job, _ = jobspec.from_hcl2(hcl2.loads(files[hcl_path]))
            except Exception as exc:  # a parse error is a finding, whatever its type
                problems.append(f"{where}: does not parse: {' '.join(str(exc).split())[:200]}")
                continue
            jobs += 1
            problems += [f"{where}: {e}" for e in jobspec.check_structure(job)]
            problems += [f"{where}: {e}" for e in jobspec.check_semantics(job, drain_s=env.drain_s)]
            committed = json.loads(files[json_path])
            if jobspec.to_api(job) != committed:
                problems.append(f"{where} and {json_path} do not say the same")
            problems += api_problems(committed, str(json_path))
            problems += nomad_file_problems(committed, name, str(json_path))
            problems += _scaling_problems(committed, deployment, name, where)
    entries = {f: json.loads(t) for f, t in files.items() if f.parent == render.CONSUL_DIR}
    protocols = {e["Name"]: e["Protocol"] for e in entries.values() if e["Kind"] == "service-defaults"}
    for path, entry in sorted(entries.items()):
        problems += [f"{path}: {e}" for e in consul.check_entry(entry, protocols)]
    problems += intention_flow_problems(deployment, list(entries.values()))
    problems += parity_problems(root, files, deployment)
    return problems, f"{jobs} jobs and {len(entries)} Consul config entries"


def nomad_file_problems(api: dict[str, Any], name: str, where: str) -> list[str]:
    """Every file a task's settings name (``CARAVAN_*_FILE``) is written by one of its templates,
    from the job's own Nomad Variable (so every allocation of the job reads the same secrets)."""
    problems = []
    for group in api["Job"].get("TaskGroups", []):
        for task in group.get("Tasks", []):
            templates = task.get("Templates") or []
            written = {"/" + str(t.get("DestPath", "")) for t in templates}
            for key, value in sorted((task.get("Env") or {}).items()):
                if key.endswith("_FILE") and value not in written:
                    problems.append(f"{where}: {key}={value} is not written by any template")
            for t in templates:
                if (
                    "nomadVar" in t.get("EmbeddedTmpl", "")
                    and f'nomadVar "nomad/jobs/{name}"' not in t["EmbeddedTmpl"]
                ):
                    problems.append(f"{where}: {t.get('DestPath')} is not read from nomad/jobs/{name}")
    return problems


def k8s_file_problems(config: dict[str, str], pod: dict[str, Any], where: str) -> list[str]:
    """Every file a container's settings name (``CARAVAN_*_FILE`` in its ConfigMap) is an item of
    a Secret mounted read-only into it."""
    (c,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    provided = set()
    for mount in c.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        sources = (volume.get("projected") or {}).get("sources", [])
        if "secret" in volume:
            sources = [{"secret": volume["secret"]}]
        for source in sources:
            for item in (source.get("secret") or {}).get("items", []):
                if mount.get("readOnly"):
                    provided.add(f"{mount['mountPath'].rstrip('/')}/{item['path']}")
    return [
        f"{where}: {key}={value} is not a Secret item mounted read-only"
        for key, value in sorted(config.items())
        if key.endswith("_FILE") and value not in provided
    ]


def _scaling_problems(api: dict[str, Any], deployment: Deployment, name: str, where: str) -> list[str]:
    d = deployment.deployables[name]
    groups = api["Job"].get("TaskGroups", [])
    scaling = groups[0].get("Scaling") if groups else None
    if not scaling:
        return [f"{where}: no scaling block"]
    problems = []
    if (scaling.get("Min"), scaling.get("Max")) != (d.scaling.min, d.scaling.max):
        problems.append(f"{where}: scaling {scaling.get('Min')}..{scaling.get('Max')} is not the declared "
                        f"{d.scaling.min}..{d.scaling.max}")  # fmt: skip
    checks = (scaling.get("Policy") or {}).get("check") or []
    strategies = [s for c in checks for body in c.values() for s in body[0].get("strategy", [])]
    if not any("target-value" in s for s in strategies):
        problems.append(f"{where}: the scaling policy has no target-value strategy")
    return problems


def intention_flow_problems(deployment: Deployment, entries: list[dict[str, Any]]) -> list[str]:
    """The intentions allow exactly the foundation's flows between members of the mesh."""
    allowed: set[tuple[str, str]] = set()
    deny_all = False
    for e in entries:
        if e["Kind"] != "service-intentions":
            continue
        for s in e["Sources"]:
            if e["Name"] == "*" and s["Name"] == "*" and s.get("Action") == "deny":
                deny_all = True
            elif s.get("Action") == "allow" or s.get("Permissions"):
                allowed.add((s["Name"], e["Name"]))
    expected = {
        (c.source, d.name) for d in deployment.deployables.values() for c in d.callers if c.source != "client"
    }
    problems = [] if deny_all else ["no default-deny intention (* → *)"]
    problems += [f"intention {a} → {b} is not a foundation flow" for a, b in sorted(allowed - expected)]
    problems += [f"foundation flow {a} → {b} has no intention" for a, b in sorted(expected - allowed)]
    return problems


# ------------------------------------------------------------------------------ Kubernetes


def kustomize(root: Path, overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed (it runs `kubectl kustomize`)")
    done = subprocess.run(
        [kubectl, "kustomize", str(root / render.K8S_DIR / "overlays" / overlay)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize k8s/overlays/{overlay}: {done.stderr.strip()[:300]}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def schema_problems(docs: list[dict[str, Any]], overlay: str, versions: tuple[str, ...]) -> list[str]:
    import kubernetes_validate

    problems = []
    for version in versions:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(
                    f"{overlay}: {_name(doc)} invalid for Kubernetes {version}: {exc.message[:200]}"
                )
            except kubernetes_validate.utils.SchemaNotFoundError:
                problems.append(
                    f"{overlay}: {_name(doc)}: no {doc.get('apiVersion')} schema in Kubernetes {version}"
                )
    return problems


def policy_problems(docs: list[dict[str, Any]], deployment: Deployment, env: Environment) -> list[str]:
    problems = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    for name, d in deployment.deployables.items():
        dep = by_kind.get("Deployment", {}).get(name)
        if dep is None:
            problems.append(f"{env.name}: no Deployment {name}")
            continue
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        where = f"{env.name}: Deployment {name}"
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != d.health_ready:
            problems.append(f"{where}: readiness probe is not on {d.health_ready}")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != d.health_live:
            problems.append(f"{where}: liveness probe is not on {d.health_live}")
        limits = c.get("resources", {}).get("limits", {})
        if not {"cpu", "memory"} <= set(limits):
            problems.append(f"{where}: no cpu and memory limits")
        sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            problems.append(f"{where}: may run as root")
        if not sc.get("readOnlyRootFilesystem"):
            problems.append(f"{where}: root filesystem is writable")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{where}: capabilities are not all dropped")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: privilege escalation allowed")
        if "preStop" not in c.get("lifecycle", {}):
            problems.append(f"{where}: no preStop hook")
        if pod.get("terminationGracePeriodSeconds", 30) <= env.drain_s + k8s.PRESTOP_S:
            problems.append(f"{where}: terminationGracePeriodSeconds does not exceed preStop + drain")
        config = by_kind.get("ConfigMap", {}).get(f"{name}-config", {}).get("data", {})
        problems += k8s_file_problems(config, pod, where)
        for e in c.get("env", []):
            if "value" in e and any(w in e["name"] for w in ("KEY", "SECRET", "PASSWORD", "URL", "TOKEN")):
                problems.append(f"{where}: {e['name']} is inlined, not a Secret reference")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(name)
        if hpa is None or hpa.get("apiVersion") != "autoscaling/v2":
            problems.append(f"{env.name}: no autoscaling/v2 HorizontalPodAutoscaler for {name}")
        elif (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) != (d.scaling.min, d.scaling.max):
            problems.append(
                f"{env.name}: HPA {name} bounds are not service.toml's {d.scaling.min}..{d.scaling.max}"
            )
        elif not d.scaling.min <= dep["spec"]["replicas"] <= d.scaling.max:
            problems.append(
                f"{env.name}: Deployment {name} replicas outside {d.scaling.min}..{d.scaling.max}"
            )
        if name not in by_kind.get("PodDisruptionBudget", {}):
            problems.append(f"{env.name}: no PodDisruptionBudget for {name}")
    for kind in ("Secret",):
        problems += [
            f"{env.name}: {kind} {n} is rendered (secrets are referenced only)" for n in by_kind.get(kind, {})
        ]
    if "gateway" not in by_kind.get("Ingress", {}):
        problems.append(f"{env.name}: no Ingress in front of the gateway")
    problems += network_flow_problems(list(by_kind.get("NetworkPolicy", {}).values()), deployment, env)
    return problems


def network_flows(policies: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], set[tuple[str, str]], bool]:
    """(ingress pairs, egress pairs, default deny) a set of NetworkPolicies allows, in the
    foundation's member names."""
    ingress: set[tuple[str, str]] = set()
    egress: set[tuple[str, str]] = set()
    deny = False
    for p in policies:
        spec = p["spec"]
        selector = spec.get("podSelector", {}).get("matchLabels", {})
        if not selector:
            deny = deny or (set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
                            and not spec.get("ingress") and not spec.get("egress"))  # fmt: skip
            continue
        member = selector[k8s.NAME_LABEL]
        for rule in spec.get("ingress", []):
            for peer in rule.get("from") or [{}]:
                ingress.add((_peer(peer), member))
        for rule in spec.get("egress", []):
            for peer in rule.get("to") or [{}]:
                egress.add((member, _peer(peer, member)))
    return ingress, egress, deny


def _peer(peer: dict[str, Any], owner: str = "") -> str:
    if "ipBlock" in peer:
        return f"{owner}-db"
    ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
    pod = peer.get("podSelector", {}).get("matchLabels", {})
    if ns == k8s.INGRESS_CONTROLLER_NS:
        return "client"
    if ns == "kube-system" and pod.get("k8s-app") == "kube-dns":
        return "dns"
    if pod.get(k8s.NAME_LABEL) and not ns:
        return str(pod[k8s.NAME_LABEL])
    return f"anything ({json.dumps(peer, sort_keys=True)})"


def network_flow_problems(
    policies: list[dict[str, Any]], deployment: Deployment, env: Environment
) -> list[str]:
    ingress, egress, deny = network_flows(policies)
    want_in = {(c.source, d.name) for d in deployment.deployables.values() for c in d.callers}
    want_out = {(d.name, u) for d in deployment.deployables.values() for u in d.upstreams}
    want_out |= {(d.name, d.database) for d in deployment.deployables.values() if d.database}
    want_out |= {(d.name, "dns") for d in deployment.deployables.values()}
    problems = [] if deny else [f"{env.name}: no default-deny NetworkPolicy"]
    for label, got, want in (("ingress", ingress, want_in), ("egress", egress, want_out)):
        problems += [
            f"{env.name}: NetworkPolicy {label} {a} → {b} is not a foundation flow"
            for a, b in sorted(got - want)
        ]
        problems += [
            f"{env.name}: foundation flow {a} → {b} has no {label} rule" for a, b in sorted(want - got)
        ]
    return problems


def k8s_problems(root: Path, files: dict[Path, str] | None = None,
                 versions: tuple[str, ...] = K8S_VERSIONS) -> tuple[list[str], str]:  # fmt: skip
    files = files if files is not None else render.render(root)
    problems = [p for p in render.drift(root, files) if p.startswith(str(render.K8S_DIR))]
    if problems:
        return problems, ""  # kustomize reads the files on disk: a stale tree is checked after a render
    deployment = load_deployment(root)
    objects = 0
    for env_name in environment_names(root):
        env = load_environment(root, env_name)
        try:
            docs = kustomize(root, env_name)
        except RuntimeError as exc:
            problems.append(str(exc))
            continue
        objects += len(docs)
        problems += schema_problems(docs, env_name, versions)
        problems += policy_problems(docs, deployment, env)
    overlays = ", ".join(environment_names(root))
    return problems, f"overlays {overlays}: {objects} objects valid for Kubernetes {', '.join(versions)}"


# ------------------------------------------------------------------------------ parity


def parity_problems(root: Path, files: dict[Path, str], deployment: Deployment) -> list[str]:
    """Nomad jobs, Kubernetes manifests and service.toml agree: ports, health paths, scaling
    bounds, environment and image tags (per environment)."""
    problems = []
    base = {d["metadata"]["name"] + "/" + d["kind"]: d for rel, text in files.items()
            if rel.parent == render.K8S_DIR / "base" and rel.name != "kustomization.yaml"
            for d in yaml.safe_load_all(text) if d}  # fmt: skip
    for env_name in environment_names(root):
        overlay = yaml.safe_load(files[render.K8S_DIR / "overlays" / env_name / "kustomization.yaml"])
        tags = {i["name"]: i["newTag"] for i in overlay["images"]}
        replicas = {r["name"]: r["count"] for r in overlay["replicas"]}
        for name, d in deployment.deployables.items():
            where = f"{env_name} {name}"
            job = json.loads(files[render.NOMAD_DIR / env_name / "json" / f"{name}.json"])["Job"]
            (group,) = job["TaskGroups"]
            (task,) = group["Tasks"]
            (service,) = group["Services"]
            dep = base[f"{name}/Deployment"]
            (c,) = dep["spec"]["template"]["spec"]["containers"]
            hpa = base[f"{name}/HorizontalPodAutoscaler"]["spec"]
            config = base[f"{name}-config/ConfigMap"]["data"]
            nomad_port = (group["Networks"][0].get("DynamicPorts") or [{"To": int(service["PortLabel"])}])[0][
                "To"
            ]
            if not nomad_port == c["ports"][0]["containerPort"] == PORT:
                problems.append(
                    f"{where}: ports differ (Nomad {nomad_port}, Kubernetes {c['ports'][0]['containerPort']})"
                )
            nomad_paths = sorted(ch["Path"] for ch in service["Checks"])
            k8s_paths = sorted(
                [c["readinessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["path"]]
            )
            if not nomad_paths == k8s_paths == sorted([d.health_ready, d.health_live]):
                problems.append(f"{where}: health paths differ (Nomad {nomad_paths}, Kubernetes {k8s_paths})")
            bounds = {
                (group["Scaling"]["Min"], group["Scaling"]["Max"]),
                (hpa["minReplicas"], hpa["maxReplicas"]),
            }
            if bounds != {(d.scaling.min, d.scaling.max)}:
                problems.append(f"{where}: scaling bounds differ: {sorted(bounds)} vs service.toml")
            if group["Count"] != replicas[name]:
                problems.append(
                    f"{where}: count {group['Count']} (Nomad) vs replicas {replicas[name]} (Kubernetes)"
                )
            image, _, tag = task["Config"]["image"].rpartition(":")
            if (image, tag) != (c["image"], tags[c["image"]]):
                problems.append(
                    f"{where}: image {task['Config']['image']} (Nomad) vs {c['image']}:{tags[c['image']]}"
                )
            nomad_env = {k: v for k, v in task["Env"].items() if not k.startswith("CARAVAN_UPSTREAM_")}
            k8s_env = {k: v for k, v in config.items() if not k.startswith("CARAVAN_UPSTREAM_")}
            if env_name == "dev" and nomad_env != k8s_env:
                diff = sorted(set(nomad_env.items()) ^ set(k8s_env.items()))
                problems.append(f"{where}: environment differs: {diff[:3]}")
            ups = {k for k in task["Env"] if k.startswith("CARAVAN_UPSTREAM_")}
            if ups != {k for k in config if k.startswith("CARAVAN_UPSTREAM_")}:
                problems.append(f"{where}: upstreams differ")
    return problems
