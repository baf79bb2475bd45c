"""The API gateway on the local runtime: its virtualenv, API keys, settings and program.

The route table is derived from every service's declared routes (service.toml), plus one route
the runtime keeps for its own gate: ``/api/_probe`` → ``gateway-probe``, an instance that exists
only while stage 2's gateway gate runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from caravan_workspace.foundation import Foundation
from caravan_workspace.runtime import catalog
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.programs import Program, RuntimeError_

PROGRAM = "gateway-1"
MEMBER = "gateway"
FOLDER = Path("shared") / "gateway"
PROBE_ROUTE = "/api/_probe"
PROBE_SERVICE = "gateway-probe"
CLIENT_CUSTOMER = "workspace"
#: API keys provisioned with the gateway: customer → scopes. ``workspace`` (operator) is used by the
#: gates and handy by hand; ``demo`` and ``demo-2`` are plain customers for the round-trip gates.
KEYS: dict[str, tuple[str, ...]] = {CLIENT_CUSTOMER: ("operator",), "demo": (), "demo-2": ()}


def gateway_dir(rt: LocalRuntime) -> Path:
    return rt.ctx.state_dir / "gateway"


def routes(rt: LocalRuntime) -> dict[str, str]:
    table = {route: svc.name for svc in rt.services.values() for route in svc.routes}
    table[PROBE_ROUTE] = PROBE_SERVICE
    return table


def api_key_file(rt: LocalRuntime, customer: str = CLIENT_CUSTOMER) -> Path:
    """The API key of one provisioned customer (0600); the workspace's own (operator scope) by
    default: `curl -H "X-API-Key: $(cat .caravan/gateway/workspace.api-key)" ...`."""
    return gateway_dir(rt) / f"{customer}.api-key"


def provision_api_keys(rt: LocalRuntime, python: Path) -> list[str]:
    """Create the API key of every customer in :data:`KEYS` that has none; returns those created."""
    folder = gateway_dir(rt)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    created = []
    for customer, scopes in KEYS.items():
        if api_key_file(rt, customer).exists():
            continue
        done = subprocess.run(
            [str(python), "-m", "caravan_gateway", "add-key", "--keys-file", str(folder / "api-keys.json"),
             "--customer", customer, *(arg for scope in scopes for arg in ("--scope", scope))],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError_(f"cannot create the API key of {customer}: {done.stderr.strip()}")
        fd = os.open(api_key_file(rt, customer), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(done.stdout.strip() + "\n")
        created.append(customer)
    return created


def api_key(rt: LocalRuntime, customer: str = CLIENT_CUSTOMER) -> str:
    return api_key_file(rt, customer).read_text().strip()


def url(rt: LocalRuntime) -> str:
    return f"http://{rt.foundation.host}:{rt.ports.port_for(PROGRAM, MEMBER)}"


#: Gateway settings a workspace may set through ``CARAVAN_GATEWAY_<NAME>`` (else the defaults).
RATE_SETTINGS = ("RATE_PER_SECOND", "RATE_BURST", "AUTH_FAILURES_PER_SECOND", "AUTH_FAILURES_BURST")


def policy(rt: LocalRuntime) -> dict[str, list[str] | None]:
    """What the foundation model lets the gateway call on each routed service (its public OpenAPI
    document lists only that)."""
    return policy_of(rt.foundation, set(routes(rt).values()))


def policy_of(foundation: Foundation, routed: Iterable[str]) -> dict[str, list[str] | None]:
    """:func:`policy` for any target: the gateway's allowed rules on each of the ``routed``
    services (``CARAVAN_GATEWAY_POLICY``; the Docker, Nomad and Kubernetes targets pass it too)."""
    out: dict[str, list[str] | None] = {}
    for service in sorted(set(routed)):
        rules = foundation.callers_of(service).get(MEMBER, ())
        out[service] = None if rules is None else list(rules)
    return out


def rate_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The per-customer rate and the failed-authentication limit per address, when the workspace
    says (``CARAVAN_GATEWAY_RATE_*``, ``CARAVAN_GATEWAY_AUTH_FAILURES_*``: a suite measuring
    capacity, a fuzzer sending bad credentials on purpose), as the gateway's own settings; else
    nothing (the gateway's defaults)."""
    return {
        f"CARAVAN_{name}": environ[f"CARAVAN_GATEWAY_{name}"]
        for name in RATE_SETTINGS
        if f"CARAVAN_GATEWAY_{name}" in environ
    }


def program(rt: LocalRuntime, python: Path) -> Program:
    port = rt.ports.port_for(PROGRAM, MEMBER)
    env = {
        "CARAVAN_SERVICE_NAME": "gateway",
        "CARAVAN_HOST": rt.foundation.host,
        "CARAVAN_PORT": str(port),
        "CARAVAN_INSTANCE_ID": PROGRAM,
        "CARAVAN_GATEWAY_ROUTES": json.dumps(routes(rt), sort_keys=True),
        "CARAVAN_GATEWAY_POLICY": json.dumps(policy(rt), sort_keys=True),
        "CARAVAN_IDENTITY_KEY_FILE": str(rt.identity_dir / f"{MEMBER}.key"),
        "CARAVAN_API_KEYS_FILE": str(gateway_dir(rt) / "api-keys.json"),
        "CARAVAN_TRACE_FILE": str(rt.ctx.state_dir / "traces" / f"{PROGRAM}.jsonl"),
        "CARAVAN_ACCESS_LOG": "true",
        "PYTHONUNBUFFERED": "1",
        **catalog.discovery_env(rt.ctx.state_dir),
        **rate_env(os.environ),
    }  # fmt: skip
    return Program(
        name=PROGRAM, member=MEMBER, kind="gateway", command=(str(python), "-m", "caravan_gateway"),
        port=port, ready_path="/health/ready", metrics_path="/metrics", env=env, stopwaitsecs=20,
    )  # fmt: skip


def ensure(rt: LocalRuntime) -> list[str]:
    """Build the gateway's virtualenv when its project changed, provision the workspace API key,
    and run the gateway; returns what changed."""
    rt.identities.provision()
    venv = rt.venv_dir(MEMBER)
    rebuilt = rt.environments.build(rt.ctx.root / FOLDER, MEMBER, venv)
    python = venv / "bin" / "python"
    changed = [f"api key of {c}" for c in provision_api_keys(rt, python)]
    gateway = program(rt, python)
    started = rt.run([gateway])
    if rebuilt and not started:
        rt.supervisor.restart(gateway.name)
        started = [gateway.name]
    rt.programs.wait_ready([gateway], timeout=60)
    rt.programs.publish_instances()
    rt.sync_monitoring()
    return changed + started
