"""The Docker target: the whole system on the local Docker engine.

* **Images**: ``invoke images`` (a no-op when nothing changed) gives every deployable's tag.
* **Networks from the foundation model**: one internal network per callee, ``<project>-to-<callee>``,
  joined only by the callee (alias: its name) and the callers the model allows; the gateway alone
  also joins ``<project>-edge``, the one non-internal network, and is published on 127.0.0.1 only.
  So svc-c cannot even resolve svc-a; a forbidden flow that shares a network (the gateway calling
  svc-a's reservations with POST) is refused by identity (403).
* **Identities and secrets**: each container gets its own private key and the public keys as 0400
  files in a read-only bind mount (``/run/secrets/caravan``) — never in an image; each service also
  its secret (``CARAVAN_SECRET_KEY_FILE``: svc-b's order ids), the gateway its API-key file. The
  gateway's settings are the local runtime's: its routes, its policy (``CARAVAN_GATEWAY_POLICY``:
  its public OpenAPI document lists only what it may call) and ``CARAVAN_GATEWAY_RATE_*`` when set.
  **Configuration** by environment (the commons settings); discovery is static:
  ``CARAVAN_UPSTREAM_<NAME>=http://<name>:8000``, resolved by Docker's DNS on the callee's network.
* **Data**: SQLite in a volume per service (``<project>-<name>-data``, also holding its trace file);
  with ``CARAVAN_DOCKER_POSTGRES_DSN`` (a server reachable from the containers, a role with
  CREATEDB) each service gets a database of its own there instead, over a non-internal network.
* Containers run non-root with a read-only root filesystem, a tmpfs /tmp, no capabilities, and
  are started in dependency order, each waiting for its healthcheck before its dependents.

Everything carries the label ``org.caravan.project=<project>`` (default ``caravan``;
``CARAVAN_DOCKER_PROJECT`` or the ``project`` argument), so status and down find exactly it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from caravan_commons.identity import PUBLIC_KEYS_FILE, generate_identities
from caravan_workspace.deploy import DeployError
from caravan_workspace.foundation import Foundation, load_foundation
from caravan_workspace.images import docker
from caravan_workspace.images.build import BuiltImage, ImageBuildError, build_all
from caravan_workspace.images.docker import DockerError
from caravan_workspace.registry import Context
from caravan_workspace.runtime.gateway import KEYS, policy_of, rate_env, routes
from caravan_workspace.runtime.ports import port_offset
from caravan_workspace.services import Service, load_services

PROJECT_ENV = "CARAVAN_DOCKER_PROJECT"
GATEWAY_PORT_ENV = "CARAVAN_DOCKER_GATEWAY_PORT"
POSTGRES_DSN_ENV = "CARAVAN_DOCKER_POSTGRES_DSN"
DEFAULT_PROJECT = "caravan"
GATEWAY_PORT = 18090  # + CARAVAN_PORT_OFFSET
LABEL = "org.caravan.project"
CONFIG_LABEL = "org.caravan.config"
SECRETS = "/run/secrets/caravan"
DATA = "/var/lib/caravan"
PORT = 8000
UID = 10001  # the images' user
GATEWAY = "gateway"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    internal: bool
    members: tuple[str, ...]


@dataclass(frozen=True)
class ContainerSpec:
    member: str
    name: str
    image: str
    env: dict[str, str]
    networks: tuple[str, ...]
    volume: str | None
    secrets: Path
    publish: str | None = None
    depends_on: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def config_digest(self) -> str:
        text = json.dumps([self.image, self.env, self.networks, self.volume, self.publish], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def project_name(project: str | None = None) -> str:
    name = project or os.environ.get(PROJECT_ENV) or DEFAULT_PROJECT
    if not name.replace("-", "").isalnum() or not name[0].isalpha():
        raise DeployError(f"project name {name!r} must be letters, digits and '-', starting with a letter")
    return name.lower()


def gateway_port(port: int | None = None) -> int:
    if port is not None:
        return port
    raw = os.environ.get(GATEWAY_PORT_ENV)
    return int(raw) if raw else GATEWAY_PORT + port_offset()


def home(ctx: Context, project: str) -> Path:
    """The project's files on the host: identities and API keys (mounted read-only)."""
    return ctx.state_dir / "docker" / project


# ---------------------------------------------------------------------------- rendering


def render_networks(project: str, foundation: Foundation, members: list[str]) -> list[NetworkSpec]:
    """The foundation model as Docker networks: the edge (gateway only, the one non-internal
    network) and one internal network per callee with its allowed callers among ``members``."""
    networks = [NetworkSpec(f"{project}-edge", internal=False, members=(GATEWAY,))]
    for callee in members:
        callers = [c for c in foundation.callers_of(callee) if c in members and c != callee]
        if callers:
            networks.append(
                NetworkSpec(f"{project}-to-{callee}", internal=True, members=(callee, *sorted(callers)))
            )
    return networks


def _ordered(services: dict[str, Service]) -> list[Service]:
    """Services with every dependency before its dependents."""
    done: list[Service] = []
    pending = dict(services)
    while pending:
        ready = [s for s in pending.values() if all(d not in pending for d in s.depends_on)]
        if not ready:
            raise DeployError(f"a dependency cycle among {', '.join(sorted(pending))}")
        for service in sorted(ready, key=lambda s: s.name):
            done.append(service)
            del pending[service.name]
    return done


def database_url(project: str, service: Service) -> str:
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if dsn:
        database = f"caravan_{project.replace('-', '_')}_{service.package}"
        return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))
    return f"sqlite:///{DATA}/{service.name}.sqlite3"


def render(
    ctx: Context, project: str, images: dict[str, str], *, port: int
) -> tuple[list[NetworkSpec], list[ContainerSpec]]:
    """Networks and containers (in start order) for the images ``member → tag``."""
    services = load_services(ctx.root)
    foundation = load_foundation(ctx.root, services)
    members = [*services, GATEWAY]
    networks = render_networks(project, foundation, members)
    if os.environ.get(POSTGRES_DSN_ENV):
        networks.append(NetworkSpec(f"{project}-data", internal=False, members=tuple(services)))
    joined = {m: tuple(n.name for n in networks if m in n.members) for m in members}
    upstreams = {_upstream_env(name): f"http://{name}:{PORT}" for name in services}
    containers = []
    for service in _ordered(services):
        callers = foundation.callers_of(service.name)
        env = {
            "CARAVAN_SERVICE_NAME": service.name,
            "CARAVAN_INSTANCE_ID": f"{service.name}-1",
            "CARAVAN_DATABASE_URL": database_url(project, service),
            "CARAVAN_TRACE_FILE": f"{DATA}/{service.name}-1.traces.jsonl",
            "CARAVAN_ACCESS_LOG": "true",
            "CARAVAN_DISCOVERY_BACKEND": "static",
            **{_upstream_env(d): f"http://{d}:{PORT}" for d in service.depends_on},
            "CARAVAN_IDENTITY_NAME": service.name,
            "CARAVAN_IDENTITY_KEY_FILE": f"{SECRETS}/{service.name}.key",
            "CARAVAN_PUBLIC_KEYS_FILE": f"{SECRETS}/{PUBLIC_KEYS_FILE}",
            "CARAVAN_SECRET_KEY_FILE": f"{SECRETS}/{service.name}.secret",
            "CARAVAN_ALLOWED_CALLERS": json.dumps(
                {k: list(v) if v else None for k, v in sorted(callers.items())}
            ),
        }
        containers.append(
            ContainerSpec(
                member=service.name, name=f"{project}-{service.name}-1", image=images[service.name], env=env,
                networks=joined[service.name], volume=f"{project}-{service.name}-data",
                secrets=home(ctx, project) / "secrets" / service.name, depends_on=service.depends_on,
            )
        )  # fmt: skip
    gateway_routes = _routes(ctx)
    gateway_env = {
        "CARAVAN_SERVICE_NAME": GATEWAY,
        "CARAVAN_INSTANCE_ID": f"{GATEWAY}-1",
        "CARAVAN_GATEWAY_ROUTES": json.dumps(gateway_routes, sort_keys=True),
        "CARAVAN_GATEWAY_POLICY": json.dumps(policy_of(foundation, gateway_routes.values()), sort_keys=True),
        "CARAVAN_IDENTITY_KEY_FILE": f"{SECRETS}/{GATEWAY}.key",
        "CARAVAN_API_KEYS_FILE": f"{SECRETS}/api-keys.json",
        "CARAVAN_TRACE_FILE": f"{DATA}/{GATEWAY}-1.traces.jsonl",
        "CARAVAN_ACCESS_LOG": "true",
        "CARAVAN_DISCOVERY_BACKEND": "static",
        **upstreams,
        **rate_env(os.environ),  # the per-customer rate, when the workspace says (as locally)
    }
    containers.append(
        ContainerSpec(
            member=GATEWAY, name=f"{project}-{GATEWAY}-1", image=images[GATEWAY], env=gateway_env,
            networks=joined[GATEWAY], volume=f"{project}-{GATEWAY}-data",
            secrets=home(ctx, project) / "secrets" / GATEWAY, publish=f"127.0.0.1:{port}:{PORT}",
            depends_on=tuple(services),
        )
    )  # fmt: skip
    return networks, containers


def _upstream_env(service: str) -> str:
    """The static discovery variable of ``service`` (caravan_commons.discovery)."""
    return f"CARAVAN_UPSTREAM_{service.upper().replace('-', '_')}"


def _routes(ctx: Context) -> dict[str, str]:
    """The gateway's routes as the local runtime derives them, less its own probe route."""

    class _Runtime:  # routes() reads only .services
        services = load_services(ctx.root)

    table = routes(_Runtime())  # type: ignore[arg-type]
    return {route: target for route, target in table.items() if not route.startswith("/api/_")}


# ---------------------------------------------------------------------------- provisioning


def _own(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, UID, UID)


def provision_secrets(ctx: Context, project: str, members: list[str], gateway_image: str) -> None:
    """Key pairs and secrets for every member (kept in the project's folder, 0600), and per
    container a folder holding its own private key, the public keys and — for a service — its
    secret (``<name>.secret``: svc-b derives order ids with it), for the gateway the API keys, as
    0400 files owned by the images' user (mounted read-only)."""
    root = home(ctx, project)
    keys = root / "identity"
    generate_identities(members, keys)
    api = root / "api-keys"
    _provision_api_keys(api, gateway_image, project)
    for member in members:
        folder = root / "secrets" / member
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        files = [keys / f"{member}.key", keys / PUBLIC_KEYS_FILE]
        if member == GATEWAY:
            files.append(api / "api-keys.json")
        else:
            files.append(keys / f"{member}.secret")
        for source in files:
            target = folder / source.name
            shutil.copyfile(source, target)
            _own(target, 0o400)
        _own(folder, 0o500)


def _one_off_name(project: str, what: str) -> str:
    """A one-off container's name: the project's prefix, then what it does, then a nonce."""
    return f"{project}-{what}-{uuid.uuid4().hex[:8]}"


def _provision_api_keys(folder: Path, image: str, project: str) -> None:
    """The gateway's API keys (``runtime.gateway.KEYS``), made by the gateway image's own
    ``add-key`` command; each customer's key in ``<customer>.api-key`` (0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for customer, scopes in KEYS.items():
        key_file = folder / f"{customer}.api-key"
        if key_file.exists():
            continue
        work = folder / "work"
        work.mkdir(exist_ok=True)
        if (folder / "api-keys.json").exists():
            shutil.copyfile(folder / "api-keys.json", work / "api-keys.json")
        os.chmod(work, 0o777)  # written by the image's user, then taken back
        done = docker.run(
            ["run", "--rm", "--name", _one_off_name(project, "add-key"), *_labels(project),
             "--network", "none", "--read-only", "-v", f"{work}:/keys", image, "add-key",
             "--keys-file", "/keys/api-keys.json", "--customer", customer,
             *(a for scope in scopes for a in ("--scope", scope))],
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DeployError(f"cannot create the API key of {customer}: {done.stderr.strip()[-200:]}")
        shutil.copyfile(work / "api-keys.json", folder / "api-keys.json")
        shutil.rmtree(work)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(done.stdout.strip() + "\n")


def api_key(ctx: Context, customer: str = "workspace", project: str | None = None) -> str:
    return (home(ctx, project_name(project)) / "api-keys" / f"{customer}.api-key").read_text().strip()


# ---------------------------------------------------------------------------- applying


def _labels(project: str, **extra: str) -> list[str]:
    pairs = {LABEL: project, **extra}
    return [a for k, v in pairs.items() for a in ("--label", f"{k}={v}")]


def ensure_network(project: str, spec: NetworkSpec) -> None:
    if docker.inspect("network", spec.name) is not None:
        return
    docker.run(["network", "create", *(["--internal"] if spec.internal else []), *_labels(project),
                spec.name])  # fmt: skip


def prepare(project: str, spec: ContainerSpec, service: Service) -> None:
    """Apply the service's migrations, then load its demo data where it has a loader (both
    idempotent), each in a one-off container of its image on its data volume."""
    for module in (f"{service.package}.infrastructure.db.migrate", f"{service.package}.demo"):
        if not (service.folder / "src" / Path(*module.split("."))).with_suffix(".py").exists():
            continue
        network = f"{project}-data" if os.environ.get(POSTGRES_DSN_ENV) else "none"
        done = docker.run(
            ["run", "--rm", "--name", _one_off_name(project, service.name), "--network", network,
             "--read-only", "--tmpfs", "/tmp",
             "-v", f"{spec.volume}:{DATA}", "-e", f"CARAVAN_DATABASE_URL={spec.env['CARAVAN_DATABASE_URL']}",
             *_labels(project), "--entrypoint", "python", spec.image, "-m", module],
            check=False, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise DeployError(f"{module} failed in {service.name}'s image: {done.stderr.strip()[-200:]}")


def start_container(project: str, spec: ContainerSpec) -> bool:
    """Create and start the container unless one with the same configuration runs; True when
    (re)created."""
    digest = spec.config_digest()
    existing = docker.inspect("container", spec.name)
    if existing is not None:
        labels = (existing.get("Config") or {}).get("Labels") or {}
        if labels.get(CONFIG_LABEL) == digest and (existing.get("State") or {}).get("Running"):
            return False
        docker.run(["rm", "--force", spec.name])
    user = [] if os.geteuid() == 0 else ["--user", f"{os.getuid()}:{os.getgid()}"]
    command = [
        "create", "--name", spec.name, "--hostname", spec.member, "--network", spec.networks[0],
        "--network-alias", spec.member, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--restart", "unless-stopped", *user,
        "-v", f"{spec.secrets}:{SECRETS}:ro", *(["-v", f"{spec.volume}:{DATA}"] if spec.volume else []),
        *(["--publish", spec.publish] if spec.publish else []),
        *_labels(project, **{CONFIG_LABEL: digest, "org.caravan.member": spec.member}),
        *(a for k, v in spec.env.items() for a in ("-e", f"{k}={v}")),
        spec.image,
    ]  # fmt: skip
    docker.run(command)
    for network in spec.networks[1:]:
        docker.run(["network", "connect", "--alias", spec.member, network, spec.name])
    docker.run(["start", spec.name])
    return True


def health(name: str) -> str:
    info = docker.inspect("container", name) or {}
    state = info.get("State") or {}
    if not state.get("Running"):
        return str(state.get("Status") or "missing")
    return str((state.get("Health") or {}).get("Status") or "no healthcheck")


def wait_healthy(names: list[str], *, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if health(n) != "healthy"]
        bad = [n for n in pending if health(n) in ("unhealthy", "exited", "dead", "missing")]
        if bad:
            raise DeployError(f"{bad[0]} is {health(bad[0])}", fix=f"invoke logs {bad[0]} --target docker")
        if pending and time.monotonic() > deadline:
            raise DeployError(f"not healthy within {timeout:.0f}s: {', '.join(pending)}",
                              fix=f"invoke logs {pending[0]} --target docker")  # fmt: skip
        if pending:
            time.sleep(1)


@dataclass(frozen=True)
class Deployment:
    project: str
    url: str
    images: list[BuiltImage]
    changed: list[str]


def deploy(ctx: Context, *, project: str | None = None, port: int | None = None) -> Deployment:
    """Build the images (no-op when unchanged) and run the whole system on Docker."""
    name = project_name(project)
    published = gateway_port(port)
    try:
        docker.ensure_engine()
        images = build_all(ctx)
    except (DockerError, ImageBuildError) as exc:
        raise DeployError(str(exc), fix=exc.fix) from exc
    tags = {i.deployable.name: i.tag for i in images}
    networks, containers = render(ctx, name, tags, port=published)
    services = load_services(ctx.root)
    ctx.progress(f"provisioning identities and API keys of {name}")
    provision_secrets(ctx, name, [*services, GATEWAY], tags[GATEWAY])
    try:
        for network in networks:
            ensure_network(name, network)
        changed = []
        for spec in containers:
            if spec.member in services:
                prepare(name, spec, services[spec.member])
            wait_healthy([f"{name}-{d}-1" for d in spec.depends_on])
            if start_container(name, spec):
                ctx.progress(f"started {spec.name}")
                changed.append(spec.name)
        wait_healthy([c.name for c in containers])
    except DockerError as exc:
        raise DeployError(str(exc), fix=exc.fix) from exc
    return Deployment(name, f"http://127.0.0.1:{published}", images, changed)


# ---------------------------------------------------------------------------- observing, stopping


def _project_containers(project: str) -> list[dict[str, Any]]:
    done = docker.run(["ps", "--all", "--quiet", "--filter", f"label={LABEL}={project}"])
    ids = done.stdout.split()
    if not ids:
        return []
    return list(json.loads(docker.run(["inspect", *ids]).stdout))


def status(ctx: Context, *, project: str | None = None) -> list[dict[str, str]]:
    """One row per container of the project: name, image, state, health, user, published ports."""
    rows = []
    for info in sorted(_project_containers(project_name(project)), key=lambda i: str(i["Name"])):
        state = info.get("State") or {}
        ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
        published = ", ".join(
            f"{b['HostIp']}:{b['HostPort']}" for bindings in ports.values() if bindings for b in bindings
        )
        rows.append(
            {
                "container": str(info["Name"]).lstrip("/"),
                "image": str((info.get("Config") or {}).get("Image", "")),
                "state": str(state.get("Status", "?")),
                "health": str((state.get("Health") or {}).get("Status", "–")),
                "user": str((info.get("Config") or {}).get("User") or "root"),
                "published": published or "–",
            }
        )
    return rows


def down(ctx: Context, *, project: str | None = None, purge: bool = False) -> str:
    """Stop and remove the project's containers and networks; ``purge`` also its volumes (the
    databases) and its identities and API keys."""
    name = project_name(project)
    containers = [str(i["Name"]).lstrip("/") for i in _project_containers(name)]
    if containers:
        docker.run(["rm", "--force", *containers], timeout=120)
    networks = docker.run(["network", "ls", "--quiet", "--filter", f"label={LABEL}={name}"]).stdout.split()
    if networks:
        docker.run(["network", "rm", *networks])
    volumes: list[str] = []
    if purge:
        volumes = docker.run(["volume", "ls", "--quiet", "--filter", f"label={LABEL}={name}"]).stdout.split()
        volumes += [f"{name}-{m}-data" for m in [*load_services(ctx.root), GATEWAY]]
        for volume in sorted(set(volumes)):
            docker.run(["volume", "rm", "--force", volume], check=False)
        shutil.rmtree(home(ctx, name), ignore_errors=True)
    return f"removed {len(containers)} containers, {len(networks)} networks" + (
        f", the volumes and secrets of {name}" if purge else ""
    )


def logs(ctx: Context, name: str, *, project: str | None = None) -> str:
    """A container's log; ``name`` as `invoke status --target docker` shows it, or a member name."""
    project = project_name(project)
    for candidate in (name, f"{project}-{name}", f"{project}-{name}-1"):
        if docker.inspect("container", candidate) is not None:
            done = docker.run(["logs", candidate], check=False)
            return done.stdout + done.stderr
    raise DeployError(f"no container {name!r} in {project}", fix="invoke status --target docker")
