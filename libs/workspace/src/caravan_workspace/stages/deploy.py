"""Stage 14, deployment: the "images build and run" gate (``deploy.images``).

The gate runs the whole system on the local Docker engine in a project of its own (a unique
name, a free loopback port) and proves, in order: every image carries the right OCI labels
(version from its pyproject.toml, revision = the workspace's git HEAD, a source); every container
runs as a non-root user and its healthcheck reports healthy; an order placed through the
containerised gateway is confirmed, its id is the one svc-b's own code derives from the secret
mounted into its container (0400, ``CARAVAN_SECRET_KEY_FILE``), and its trace spans the gateway,
orders, catalog and payments; from inside svc-c's container svc-a can neither be resolved nor
reached (the networks); a call signed with the gateway's identity for that very request (v2: method
and path bound into the token) from its container to svc-a's ``POST /reservations`` — a
network the gateway shares with svc-a, but not an allowed flow — gets 403 (the identities). The
project is torn down afterwards (containers, networks, volumes, keys), pass or fail.

Where no Docker engine answers, the gate fails with the exact fix.

The gate brings up and tears down a system of its own, so its result depends on files only: it is
cached by its inputs (every deployable's folder, commons, the foundation, the Docker target's and
the image builder's code, the git revision the labels must carry, the engine's version) and runs
again when one changes (:mod:`caravan_workspace.gate_cache`).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path

from caravan_workspace import images as images_package
from caravan_workspace.deploy import DeployError
from caravan_workspace.deploy import docker as target
from caravan_workspace.gate_cache import Inputs
from caravan_workspace.images import docker
from caravan_workspace.images.build import INPUTS_LABEL, deployables, git_revision, project_version
from caravan_workspace.images.docker import DockerError
from caravan_workspace.registry import Context, GateFailure, gate
from caravan_workspace.runtime.supervisor import free_port
from caravan_workspace.stages.integration import CATALOG, ORDERS, PAYMENTS, place_order
from caravan_workspace.traces import Trace, find_trace, read_spans

SPAN_WAIT_S = 20.0
CUSTOMER = "demo"  # a plain customer of the provisioned API keys
OCI = "org.opencontainers.image."

UNREACHABLE = """
import socket, sys
try:
    socket.getaddrinfo("svc-a", 8000)
    print("resolved"); sys.exit(1)
except socket.gaierror:
    pass
try:
    socket.create_connection((sys.argv[1], 8000), timeout=3).close()
    print("connected"); sys.exit(1)
except OSError:
    print("unreachable")
"""

FORBIDDEN_CALL = """
import json, os, pathlib, urllib.error, urllib.request
from caravan_commons.identity import Signer
signer = Signer.from_file("gateway", pathlib.Path(os.environ["CARAVAN_IDENTITY_KEY_FILE"]))
body = json.dumps({"order_id": "gate-forbidden", "lines": [{"sku": "X", "quantity": 1}]}).encode()
request = urllib.request.Request("http://svc-a:8000/reservations", data=body, method="POST",
    headers={"Content-Type": "application/json", **signer.headers_for("svc-a", "POST", "/reservations")})
try:
    print(urllib.request.urlopen(request, timeout=5).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""

#: svc-b's order id for (customer, Idempotency-Key), computed inside its container by its own code
#: from the mounted secret: equal to the id the running svc-b gave only if it derives ids with that
#: secret (without it, each process draws a random key and replicas disagree).
ORDER_ID = """
import os, pathlib, sys
from svc_b.service_layer.placing import order_id_for
secret = pathlib.Path(os.environ["CARAVAN_SECRET_KEY_FILE"]).read_bytes().strip()
print(order_id_for(sys.argv[1], sys.argv[2], secret))
"""


def _exec(container: str, *command: str) -> tuple[int, str]:
    done = docker.run(["exec", container, *command], check=False, timeout=60)
    return done.returncode, (done.stdout + done.stderr).strip()


def check_labels(ctx: Context, deployment: target.Deployment) -> None:
    revision = git_revision(ctx.root)
    for image in deployment.images:
        labels = docker.image_labels(image.tag)
        expected = {
            f"{OCI}version": project_version(ctx.root, image.deployable),
            f"{OCI}revision": revision,
        }
        for key, value in expected.items():
            if labels.get(key) != value:
                raise GateFailure(
                    f"{image.tag}: label {key} is {labels.get(key)!r}, not {value!r}",
                    fix="invoke images --force",
                )
        if not labels.get(f"{OCI}source") or not labels.get(INPUTS_LABEL):
            raise GateFailure(
                f"{image.tag}: no {OCI}source or {INPUTS_LABEL} label", fix="invoke images --force"
            )


def check_containers(rows: list[dict[str, str]]) -> None:
    if len(rows) < 4:
        raise GateFailure(f"only {len(rows)} containers run", fix="invoke deploy --target docker")
    for row in rows:
        code, uid = _exec(row["container"], "id", "-u")
        if code != 0 or uid in ("", "0") or row["user"].split(":")[0] in ("root", "0"):
            raise GateFailure(f"{row['container']} runs as {uid or row['user']!r}, not as a non-root user")
        if row["health"] != "healthy":
            raise GateFailure(
                f"{row['container']} is {row['health']}",
                fix=f"invoke logs {row['container']} --target docker",
            )


def order_trace(project: str, order_id: str) -> Trace:
    """The order's trace from every container's trace file, once it spans all four programs."""
    wanted = {"gateway", ORDERS, CATALOG, PAYMENTS}
    deadline = time.monotonic() + SPAN_WAIT_S
    while True:
        with tempfile.TemporaryDirectory(prefix="caravan-gate-spans-") as folder:
            for member in ("gateway", ORDERS, CATALOG, PAYMENTS):
                code, text = _exec(f"{project}-{member}-1", "cat", f"{target.DATA}/{member}-1.traces.jsonl")
                if code == 0:
                    (Path(folder) / f"{member}.jsonl").write_text(text + "\n")
            found = find_trace(read_spans(Path(folder)), order_id)
        if found is not None and wanted <= found.services():
            return found
        if time.monotonic() > deadline:
            seen = ", ".join(sorted(found.services())) if found else "no span"
            raise GateFailure(f"the trace of order {order_id} spans {seen}, not {', '.join(sorted(wanted))}")
        time.sleep(1)


def check_order_id(project: str, customer: str, idempotency_key: str, order_id: str) -> None:
    """svc-b derived the order id with its provisioned secret (mounted read-only, 0400)."""
    container = f"{project}-{ORDERS}-1"
    code, out = _exec(container, "sh", "-c", 'stat -L -c %a "$CARAVAN_SECRET_KEY_FILE"')
    if code != 0 or out != "400":
        raise GateFailure(f"{ORDERS}'s secret key file: {out[-200:] or 'missing'} (not mode 0400)")
    code, out = _exec(container, "python", "-c", ORDER_ID, customer, idempotency_key)
    if code != 0 or out.splitlines()[-1:] != [order_id]:
        raise GateFailure(
            f"order {order_id} is not derived from {ORDERS}'s provisioned secret ({out[-200:]!r}): "
            "replicas and restarts would disagree on order ids"
        )


def check_isolation(project: str) -> str:
    info = docker.inspect("container", f"{project}-svc-a-1") or {}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    address = str((networks.get(f"{project}-to-svc-a") or {}).get("IPAddress") or "")
    if not address:
        raise GateFailure(f"svc-a is not on {project}-to-svc-a")
    code, out = _exec(f"{project}-svc-c-1", "python", "-c", UNREACHABLE, address)
    if code != 0 or out.splitlines()[-1:] != ["unreachable"]:
        raise GateFailure(f"from svc-c's container svc-a ({address}) is reachable: {out[-200:]}")
    code, out = _exec(f"{project}-gateway-1", "python", "-c", FORBIDDEN_CALL)
    if code != 0 or out.splitlines()[-1:] != ["403"]:
        raise GateFailure(f"gateway → svc-a POST /reservations answered {out[-200:]!r}, not 403")
    return address


def images_inputs(ctx: Context) -> Inputs:
    """What the gate's result depends on; asking the engine's version raises where none answers
    (the gate then runs and says why)."""
    root = ctx.root
    engine = docker.ensure_engine()
    return Inputs(
        files=[
            *(root / d.folder for d in deployables(root)),
            root / "libs" / "commons" / "src",
            root / "libs" / "commons" / "pyproject.toml",
            root / "foundation" / "foundation.toml",
            Path(target.__file__),
            Path(images_package.__file__).parent,
            Path(__file__),
        ],
        values={"revision": git_revision(root), "docker": engine},
    )


@gate("deploy.images", inputs=images_inputs)
def images_build_and_run(ctx: Context) -> str:
    try:
        docker.ensure_engine()
    except DockerError as exc:
        raise GateFailure(str(exc), fix=exc.fix) from exc
    project = f"caravan-gate-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    try:
        ctx.progress(f"deploying {project} on Docker")
        deployment = target.deploy(ctx, project=project, port=free_port())
        check_labels(ctx, deployment)
        check_containers(target.status(ctx, project=project))
        key = target.api_key(ctx, CUSTOMER, project)
        idempotency_key = f"gate-{uuid.uuid4()}"
        order = place_order(deployment.url, key, idempotency_key)
        if order.get("status") != "confirmed":
            raise GateFailure(
                f"order {order.get('id')} ended {order.get('status')}: {json.dumps(order)[:200]}"
            )
        trace = order_trace(project, str(order["id"]))
        check_order_id(project, CUSTOMER, idempotency_key, str(order["id"]))
        check_isolation(project)
    except (DeployError, DockerError) as exc:
        raise GateFailure(str(exc), fix=exc.fix) from exc
    finally:
        ctx.progress(f"tearing {project} down")
        target.down(ctx, project=project, purge=True)
    sizes = ", ".join(f"{i.deployable.name} {i.size / 1e6:.0f} MB" for i in deployment.images)
    return (
        f"{len(deployment.images)} images ({sizes}); order {order['id']} confirmed through the containerised "
        f"gateway, its id derived from svc-b's mounted secret, trace {trace.trace_id[:8]}… spans "
        f"{len(trace.services())} programs; svc-c cannot reach "
        f"svc-a; gateway→svc-a POST /reservations 403; all non-root and healthy; torn down "
        f"({time.monotonic() - started:.0f}s)"
    )
