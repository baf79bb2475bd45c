"""LIVE tests against a real Consul agent: they run only when CONSUL_HTTP_ADDR is set (e.g.
`consul agent -dev` on your machine, which can reach this machine's 127.0.0.1), and are skipped
with that reason otherwise. The contract tests (test_contract_consul.py) run everywhere."""

from __future__ import annotations

import os
import uuid

import pytest

LIVE = {k: v for k, v in os.environ.items() if k.startswith("CONSUL_")}
pytestmark = pytest.mark.skipif(
    "CONSUL_HTTP_ADDR" not in LIVE, reason="live Consul tests need CONSUL_HTTP_ADDR (a real agent)"
)
consul = pytest.importorskip("consul", reason="no Consul client installed: `nox -s commons_consul`")

from local_runtime_support import http_server, poll_until  # noqa: E402

from caravan_commons.discovery_consul import (  # noqa: E402
    ConsulAdapter,
    ConsulConfig,
    ConsulResolver,
    ServiceRegistration,
)


@pytest.fixture(autouse=True)
def _no_consul_or_nomad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CONSUL_", "NOMAD_")):
            monkeypatch.delenv(key)


async def test_register_resolve_and_lose_a_killed_instance_on_a_real_agent() -> None:
    adapter = ConsulAdapter(ConsulConfig.from_env(LIVE, wait=2.0))
    name = f"caravan-live-{uuid.uuid4().hex[:8]}"
    resolver = ConsulResolver(adapter, min_interval=0)
    with http_server("live") as (proc, port):
        registration = ServiceRegistration(
            name=name,
            service_id=f"{name}-1",
            address="127.0.0.1",
            port=port,
            check_interval="1s",
            check_timeout="1s",
        )
        adapter.register(registration)
        try:
            found = await poll_until(lambda: resolver.resolve(name), lambda r: len(r) == 1, bound=60)
            assert (found[0].host, found[0].port) == ("127.0.0.1", port)
            proc.kill()
            proc.wait()
            await poll_until(lambda: resolver.resolve(name), lambda r: r == [], bound=60)
        finally:
            adapter.deregister(registration.service_id)
            await resolver.aclose()


def test_name_based_intentions_on_a_real_agent() -> None:
    adapter = ConsulAdapter(ConsulConfig.from_env(LIVE))
    if not adapter.supports_named_intentions:
        pytest.skip(f"{adapter.flavour} has no name-based intentions (the contract test checks the error)")
    source, destination = (
        f"caravan-live-src-{uuid.uuid4().hex[:6]}",
        f"caravan-live-dst-{uuid.uuid4().hex[:6]}",
    )
    adapter.upsert_intention(source, destination, "allow")
    try:
        assert adapter.intention(source, destination) == "allow"
    finally:
        adapter.delete_intention(source, destination)
    assert adapter.intention(source, destination) is None
