"""Kubernetes manifests as a kustomize tree: ``k8s/base`` (one file per deployable: ServiceAccount,
ConfigMap, Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy; plus
the default-deny NetworkPolicy and the gateway's Ingress) and one overlay per environment
(namespace, image tags, replicas, resources, autoscaling, drain, ingress host).

Secrets are referenced, never rendered: ``<name>-identity`` (key ``identity.key``),
``caravan-public-keys`` (``public-keys.json``), ``<service>-secret`` (``secret.key``; one per
Deployment, so all its replicas share it), ``gateway-api-keys`` (``api-keys.json``) and
``<name>-database`` (``url``) are created by the operator (docs/deploy.md).
"""

from __future__ import annotations

from typing import Any

from caravan_workspace.render.model import (
    IDENTITY_KEY_FILE,
    PORT,
    PUBLIC_KEYS_FILE,
    SECRET_KEY_FILE,
    SECRETS_DIR,
    Deployable,
    Deployment,
    Environment,
    upstream_env_name,
)

NAME_LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "caravan"}
PRESTOP_S = 5  # endpoints are removed before the drain starts
GRACE_S = 10
MONITORING_LABELS = {NAME_LABEL: "monitoring"}  # Prometheus runs with this label to scrape /metrics
INGRESS_CONTROLLER_NS = "ingress-nginx"


def grace_period(env: Environment) -> int:
    return env.drain_s + PRESTOP_S + GRACE_S


def labels(name: str) -> dict[str, str]:
    return {NAME_LABEL: name, **PART_OF}


def meta(name: str, owner: str | None = None, **extra: Any) -> dict[str, Any]:
    """Metadata of an object of deployable ``owner`` (default: ``name``)."""
    return {"name": name, "labels": labels(owner or name), **extra}


def config_data(d: Deployable, deployment: Deployment, env: Environment) -> dict[str, str]:
    values = {**d.env, "CARAVAN_SHUTDOWN_TIMEOUT_S": str(env.drain_s)}
    for upstream in d.upstreams:
        values[upstream_env_name(upstream)] = f"http://{upstream}:{PORT}"
    return dict(sorted(values.items()))


def resources(env: Environment) -> dict[str, Any]:
    amount = {"cpu": f"{env.cpu}m", "memory": f"{env.memory}Mi"}
    return {"requests": dict(amount), "limits": dict(amount)}


def deployment_manifest(d: Deployable, env: Environment) -> dict[str, Any]:
    files = [(f"{d.name}-identity", IDENTITY_KEY_FILE), ("caravan-public-keys", PUBLIC_KEYS_FILE)]
    if d.name == "gateway":
        files.append(("gateway-api-keys", "api-keys.json"))
    else:
        files.append((f"{d.name}-secret", SECRET_KEY_FILE))  # one for all replicas
    secret_sources: list[dict[str, Any]] = [
        {"secret": {"name": secret, "items": [{"key": file, "path": file}]}} for secret, file in files
    ]
    env_vars = []
    if d.database:
        env_vars.append({
            "name": "CARAVAN_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": f"{d.name}-database", "key": "url"}},
        })  # fmt: skip
    probe: dict[str, Any] = {"periodSeconds": 5, "timeoutSeconds": 2}
    container: dict[str, Any] = {
        "name": d.name,
        "image": d.image_name(env),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{d.name}-config"}}],
        **({"env": env_vars} if env_vars else {}),
        "readinessProbe": {**probe, "httpGet": {"path": d.health_ready, "port": "http"},
                           "failureThreshold": 2},
        "livenessProbe": {**probe, "httpGet": {"path": d.health_live, "port": "http"}, "failureThreshold": 3,
                          "initialDelaySeconds": 10},
        "resources": resources(env),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(d.name, annotations={"caravan.dev/version": d.version}),
        "spec": {
            "replicas": d.count(env),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {NAME_LABEL: d.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels(d.name)},
                "spec": {
                    "serviceAccountName": d.name,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace_period(env),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "secrets", "projected": {"defaultMode": 0o440, "sources": secret_sources}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def hpa(d: Deployable, env: Environment) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(d.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name},
            "minReplicas": d.scaling.min,
            "maxReplicas": d.scaling.max,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                       "averageUtilization": env.target_cpu_percent}},
            }],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": env.scale_down_window_s},
            },
        },
    }  # fmt: skip


def network_policy(d: Deployable, env: Environment) -> dict[str, Any]:
    port = [{"protocol": "TCP", "port": PORT}]
    ingress = []
    for caller in d.callers:
        if caller.source == "client":
            ingress.append({"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": INGRESS_CONTROLLER_NS}}}], "ports": port})  # fmt: skip
        elif caller.source == "monitoring":
            ingress.append({"from": [{"podSelector": {"matchLabels": MONITORING_LABELS}}], "ports": port})
        else:
            ingress.append(
                {"from": [{"podSelector": {"matchLabels": {NAME_LABEL: caller.source}}}], "ports": port}
            )
    egress: list[dict[str, Any]] = [
        {"to": [{"podSelector": {"matchLabels": {NAME_LABEL: u}}}], "ports": port} for u in d.upstreams
    ]
    if d.database:
        egress.append(
            {"to": [{"ipBlock": {"cidr": env.database_cidr}}], "ports": [{"protocol": "TCP", "port": 5432}]}
        )
    egress.append({
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    })  # fmt: skip
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(d.name),
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: d.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def default_deny() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "labels": dict(PART_OF)},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def ingress(env: Environment) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta("gateway"),
        "spec": {"rules": [{"host": env.ingress_host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "gateway", "port": {"name": "http"}}},
        }]}}]},
    }  # fmt: skip


def manifests(d: Deployable, deployment: Deployment, env: Environment) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(d.name),
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{d.name}-config", d.name),
         "data": config_data(d, deployment, env)},
        deployment_manifest(d, env),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(d.name), "spec": {
            "type": "ClusterIP", "selector": {NAME_LABEL: d.name},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}},
        hpa(d, env),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(d.name),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {NAME_LABEL: d.name}}}},
        network_policy(d, env),
    ]  # fmt: skip
    if d.name == "gateway":
        docs.append(ingress(env))
    return docs


def base_kustomization(deployment: Deployment) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["default-deny.yaml", *(f"{n}.yaml" for n in deployment.order)],
    }


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def overlay(deployment: Deployment, env: Environment) -> dict[str, Any]:
    """The environment's kustomization: everything that differs from the base, as kustomize fields
    and JSON patches (the base is rendered with the first environment's values)."""
    ds = [deployment.deployables[n] for n in deployment.order]
    patches: list[dict[str, Any]] = [
        {"target": {"kind": "Deployment"}, "patch": _yaml_patch([
            _replace("/spec/template/spec/containers/0/resources", resources(env)),
            _replace("/spec/template/spec/terminationGracePeriodSeconds", grace_period(env)),
        ])},
        {"target": {"kind": "HorizontalPodAutoscaler"}, "patch": _yaml_patch([
            _replace("/spec/metrics/0/resource/target/averageUtilization", env.target_cpu_percent),
            _replace("/spec/behavior/scaleDown/stabilizationWindowSeconds", env.scale_down_window_s),
        ])},
        {"target": {"kind": "ConfigMap"}, "patch": _yaml_patch([
            _replace("/data/CARAVAN_SHUTDOWN_TIMEOUT_S", str(env.drain_s)),
        ])},
        {"target": {"kind": "Ingress", "name": "gateway"}, "patch": _yaml_patch([
            _replace("/spec/rules/0/host", env.ingress_host),
        ])},
    ]  # fmt: skip
    for d in ds:
        if d.database:
            patches.append({"target": {"kind": "NetworkPolicy", "name": d.name}, "patch": _yaml_patch([
                _replace("/spec/egress/" + str(len(d.upstreams)) + "/to/0/ipBlock/cidr", env.database_cidr),
            ])})  # fmt: skip
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": env.namespace,
        "resources": ["namespace.yaml", "../../base"],
        "labels": [{"pairs": {"caravan.dev/environment": env.name}, "includeSelectors": False}],
        "images": [{"name": d.image_name(env), "newTag": d.tag(env)} for d in ds],
        "replicas": [{"name": d.name, "count": d.count(env)} for d in ds],
        "patches": patches,
    }


def namespace(env: Environment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": env.namespace, "labels": {
            **PART_OF,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }},
    }  # fmt: skip


def _yaml_patch(ops: list[dict[str, Any]]) -> str:
    import yaml

    return str(yaml.safe_dump(ops, sort_keys=False))
