"""Nomad jobs: one per deployable, as HCL2 (``nomad/<name>.nomad.hcl``, with variables for the image
tag and the count) and as the API's JSON form (``nomad/json/<name>.json``, the variables' defaults
filled in). Both come from the same tree, so they say the same; a test parses the HCL back to
prove it.
"""

from __future__ import annotations

from caravan_workspace.render.hcl import Attr, Block, Expr, Template, Var, dumps
from caravan_workspace.render.jobspec import to_api
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

HEADER = "# Rendered by `invoke render` from service.toml, foundation/foundation.toml and\n" \
         "# deploy/environments/{env}.toml. Do not edit: change the source and render again.\n"  # fmt: skip
GRACE_S = 10  # a stopping task gets its drain plus this before it is killed
SHUTDOWN_DELAY_S = 5  # deregistered from Consul this long before the signal
UNSET_REVISION = "unset"
IMAGE_UID = 10001  # the images run as this user (Dockerfile USER); it must read its secrets


def kill_timeout_s(env: Environment) -> int:
    return env.drain_s + GRACE_S


def cpu_query(name: str) -> str:
    """The Prometheus query the Nomad Autoscaler evaluates: the group's mean CPU use in percent
    (Nomad client telemetry, ``publish_allocation_metrics = true``)."""
    return f'avg(nomad_client_allocs_cpu_total_percent{{exported_job="{name}",task="{name}"}})'


def secret_templates(d: Deployable) -> list[Block]:
    """Secrets from Nomad Variables (written by the operator; never in git) into the task's
    secrets dir, and the database URL into the environment. The variable is the job's, so every
    allocation of a job reads the same values (svc-b's instances derive the same order ids)."""
    path = f"nomad/jobs/{d.name}"
    files = [("identity_key", IDENTITY_KEY_FILE), ("public_keys", PUBLIC_KEYS_FILE)]
    if d.name == "gateway":
        files.append(("api_keys", "api-keys.json"))
    else:
        files.append(("secret_key", SECRET_KEY_FILE))
    blocks = [
        Block("template", body=[
            Attr("data", f'{{{{ with nomadVar "{path}" }}}}{{{{ .{key} }}}}{{{{ end }}}}'),
            Attr("destination", f"secrets/{file}"),
            Attr("perms", "0400"), Attr("uid", IMAGE_UID), Attr("gid", IMAGE_UID),
            Attr("change_mode", "restart"),
        ])
        for key, file in files
    ]  # fmt: skip
    if d.database:
        blocks.append(Block("template", body=[
            Attr("data", "CARAVAN_DATABASE_URL="
                         f'{{{{ with nomadVar "{path}" }}}}{{{{ .database_url }}}}{{{{ end }}}}'),
            Attr("destination", "secrets/database.env"),
            Attr("env", True),
            Attr("perms", "0400"), Attr("uid", IMAGE_UID), Attr("gid", IMAGE_UID),
            Attr("change_mode", "restart"),
        ]))  # fmt: skip
    return blocks


def task_env(d: Deployable, deployment: Deployment, env: Environment) -> dict[str, str]:
    order = deployment.sorted_names()
    values = {**d.env, "CARAVAN_SHUTDOWN_TIMEOUT_S": str(env.drain_s)}
    for upstream in d.upstreams:
        values[upstream_env_name(upstream)] = f"http://127.0.0.1:{d.upstream_port(upstream, order)}"
    assert all(v.startswith(SECRETS_DIR) for k, v in values.items() if k.endswith("_FILE")), values
    return dict(sorted(values.items()))


def job(d: Deployable, deployment: Deployment, env: Environment) -> Block:
    order = deployment.sorted_names()
    gateway = d.name == "gateway"
    checks = [
        Block("check", body=[
            Attr("name", f"{d.name} {kind}"), Attr("type", "http"), Attr("path", path),
            Attr("interval", "5s"), Attr("timeout", "2s"), Attr("expose", True),
            *([Block("check_restart", body=[Attr("limit", 3), Attr("grace", "30s")])]
              if kind == "live" else []),
        ])
        for kind, path in (("ready", d.health_ready), ("live", d.health_live))
    ]  # fmt: skip
    proxy = Block("proxy", body=[
        Block("upstreams", body=[Attr("destination_name", u),
                                 Attr("local_bind_port", d.upstream_port(u, order))])
        for u in d.upstreams
    ])  # fmt: skip
    service = Block("service", body=[
        Attr("name", d.name),
        Attr("port", "http" if gateway else str(PORT)),
        Attr("provider", "consul"),
        Attr("tags", ["caravan", f"version-{d.version}"]),
        Attr("canary_tags", ["canary"]),
        Block("meta", body=[Attr("version", d.version), Attr("metrics_path", "/metrics")]),
        *checks,
        Block("connect", body=[
            Block("sidecar_service", body=[proxy]),
            Block("sidecar_task", body=[Block("resources", body=[Attr("cpu", 50), Attr("memory", 64)])]),
        ]),
    ])  # fmt: skip
    network = Block("network", body=[
        Attr("mode", "bridge"),
        # only the gateway takes traffic from outside the mesh; services are reached via Connect
        *([Block("port", ("http",), [Attr("to", PORT)])] if gateway else []),
    ])  # fmt: skip
    task = Block("task", (d.name,), [
        Attr("driver", "docker"),
        Attr("kill_timeout", f"{kill_timeout_s(env)}s"),
        Attr("kill_signal", "SIGTERM"),
        Attr("shutdown_delay", f"{SHUTDOWN_DELAY_S}s"),
        Block("config", body=[
            Attr("image", Template(f"{d.image_name(env)}:${{var.image_tag}}")),
            Attr("readonly_rootfs", True),
            Attr("cap_drop", ["ALL"]),
            *([Attr("ports", ["http"])] if gateway else []),
        ]),
        Block("env", body=[Attr(k, v) for k, v in task_env(d, deployment, env).items()]),
        Block("resources", body=[Attr("cpu", env.cpu), Attr("memory", env.memory)]),
        *secret_templates(d),
    ])  # fmt: skip
    policy = Block("policy", body=[
        Attr("evaluation_interval", f"{env.evaluation_interval_s}s"),
        Attr("cooldown", f"{env.scale_down_window_s}s"),
        Block("check", ("cpu",), [
            Attr("source", "prometheus"),
            Attr("query", cpu_query(d.name)),
            Block("strategy", ("target-value",), [Attr("target", env.target_cpu_percent)]),
        ]),
    ])  # fmt: skip
    group = Block("group", (d.name,), [
        Attr("count", Var("count")),
        Block("network", body=network.body),
        service,
        Block("restart", body=[Attr("attempts", 3), Attr("interval", "5m"), Attr("delay", "15s"),
                               Attr("mode", "delay")]),
        Block("reschedule", body=[Attr("delay", "30s"), Attr("delay_function", "exponential"),
                                  Attr("max_delay", "10m"), Attr("unlimited", True)]),
        Block("scaling", body=[Attr("enabled", True), Attr("min", d.scaling.min), Attr("max", d.scaling.max),
                               policy]),
        task,
    ])  # fmt: skip
    return Block("job", (d.name,), [
        Attr("datacenters", list(env.datacenters)),
        Attr("type", "service"),
        Block("meta", body=[Attr("version", d.version), Attr("revision", Var("revision"))]),
        Block("ui", body=[
            Attr("description",
                 f"Caravan {d.title} ({d.name} {d.version}): rendered from {d.name}'s declaration"),
            Block("link", body=[Attr("label", "Runbook"), Attr("url", env.runbook_url)]),
            Block("link", body=[Attr("label", "Deployment docs"), Attr("url", env.docs_url)]),
        ]),
        Block("update", body=[
            Attr("max_parallel", 1), Attr("canary", 1), Attr("auto_promote", True), Attr("auto_revert", True),
            Attr("health_check", "checks"), Attr("min_healthy_time", "10s"), Attr("healthy_deadline", "3m"),
            Attr("progress_deadline", "10m"),
        ]),
        group,
    ])  # fmt: skip


def variables(d: Deployable, env: Environment) -> list[Block]:
    return [
        Block("variable", ("image_tag",), [
            Attr("description", f"the tag of {d.image_name(env)} to run"),
            Attr("type", Expr("string")), Attr("default", d.tag(env)),
        ]),
        Block("variable", ("count",), [
            Attr("description",
                 f"instances at deploy time ({d.scaling.min}..{d.scaling.max}; the autoscaler moves it)"),
            Attr("type", Expr("number")), Attr("default", d.count(env)),
        ]),
        Block("variable", ("revision",), [
            Attr("description", "the git revision deployed (`invoke deploy` sets it)"),
            Attr("type", Expr("string")), Attr("default", UNSET_REVISION),
        ]),
    ]  # fmt: skip


def resolved(job_block: Block, values: dict[str, object]) -> Block:
    """The job with its variables replaced by ``values`` (the API form has no variables)."""

    def walk(v: object) -> object:
        if isinstance(v, Var):
            return values[v.name]
        if isinstance(v, Template):
            text = v.text
            for name, val in values.items():
                text = text.replace(f"${{var.{name}}}", str(val))
            return text
        if isinstance(v, Block):
            return Block(v.type, v.labels, [walk(i) for i in v.body])  # type: ignore[misc]
        if isinstance(v, Attr):
            return Attr(v.name, walk(v.value))
        return v

    return walk(job_block)  # type: ignore[return-value]


def defaults(d: Deployable, env: Environment) -> dict[str, object]:
    return {"image_tag": d.tag(env), "count": d.count(env), "revision": UNSET_REVISION}


def hcl_text(d: Deployable, deployment: Deployment, env: Environment) -> str:
    body = [*variables(d, env), job(d, deployment, env)]
    return HEADER.format(env=env.name) + "\n" + dumps(body) + "\n"


def api_job(d: Deployable, deployment: Deployment, env: Environment, **values: object) -> dict[str, object]:
    """The API's JSON form (``{"Job": ...}``), variables from ``values`` else their defaults."""
    return to_api(resolved(job(d, deployment, env), {**defaults(d, env), **values}))
