"""CONTRACT tests of the consul backend: they check the adapter against Consul's documented HTTP
contract, served by a strict fake agent on 127.0.0.1 (fake_consul.py) — NOT against a real Consul
(which cannot run here; see test_live_consul.py for that).

Run them once per client: ``nox -s commons_consul`` installs python-consul2==0.1.5 in one
environment and py-consul==1.8.0 in another (both provide the module ``consul``) and sets
CARAVAN_CONSUL_CLIENT so the test below fails if the wrong one is installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

consul = pytest.importorskip(
    "consul", reason="no Consul client installed: `nox -s commons_consul` runs these with each client"
)

import requests  # noqa: E402 - both clients depend on it
from fake_consul import FakeConsul  # noqa: E402
from local_runtime_support import free_port, http_server, poll_until  # noqa: E402

from caravan_commons.discovery import DiscoveryConfigError  # noqa: E402
from caravan_commons.discovery_consul import (  # noqa: E402
    PY_CONSUL,
    PYTHON_CONSUL2,
    ConsulAdapter,
    ConsulConfig,
    ConsulError,
    ConsulFeatureError,
    ConsulResolver,
    ServiceRegistration,
    client_flavour,
    registered,
)
from caravan_commons.errors import UpstreamUnavailableError  # noqa: E402

FLAVOUR = client_flavour(consul)


@pytest.fixture(autouse=True)
def _no_consul_or_nomad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CONSUL_", "NOMAD_")):
            monkeypatch.delenv(key)


@pytest.fixture
def fake() -> Iterator[FakeConsul]:
    with FakeConsul() as agent:
        yield agent


def adapter_for(agent: FakeConsul, **config: object) -> ConsulAdapter:
    return ConsulAdapter(ConsulConfig(address=agent.url, **config))  # type: ignore[arg-type]


def registration(name: str, service_id: str, port: int, **extra: object) -> ServiceRegistration:
    fields: dict[str, object] = {"check_interval": "200ms", "check_timeout": "1s", **extra}
    return ServiceRegistration(name=name, service_id=service_id, address="127.0.0.1", port=port, **fields)  # type: ignore[arg-type]


def ids(instances) -> set[str]:
    return {i.instance_id for i in instances}


def test_the_expected_client_is_installed() -> None:
    expected = os.environ.get("CARAVAN_CONSUL_CLIENT")
    assert FLAVOUR in (PY_CONSUL, PYTHON_CONSUL2)
    if expected:  # set by the nox session; running by hand, any one client is fine
        assert expected.split("==")[0] == FLAVOUR


async def test_registered_instances_resolve_while_their_check_passes_and_leave_when_killed(
    fake: FakeConsul,
) -> None:
    adapter = adapter_for(fake, wait=2.0)
    resolver = ConsulResolver(adapter, min_interval=0)
    with http_server("one") as (one, port_one), http_server("two") as (_two, port_two):
        adapter.register(registration("svc-a", "svc-a-1", port_one, tags=["v1"], meta={"version": "1.0"}))
        adapter.register(registration("svc-a", "svc-a-2", port_two))
        both = await poll_until(lambda: resolver.resolve("svc-a"), lambda r: ids(r) == {"svc-a-1", "svc-a-2"})
        first = next(i for i in both if i.instance_id == "svc-a-1")
        assert (first.host, first.port, first.meta) == ("127.0.0.1", port_one, {"version": "1.0"})

        one.kill()
        one.wait()
        await poll_until(lambda: resolver.resolve("svc-a"), lambda r: ids(r) == {"svc-a-2"})

        adapter.deregister("svc-a-2")
        await poll_until(lambda: resolver.resolve("svc-a"), lambda r: r == [])
    await resolver.aclose()

    sent = [r.body for r in fake.requests if r.path == "/v1/agent/service/register"]
    body = {k.lower(): v for k, v in sent[0].items()}
    check = body["check"] if FLAVOUR == PYTHON_CONSUL2 else body["checks"][0]
    assert check["http"] == f"http://127.0.0.1:{port_one}/health/ready"
    assert (check["interval"], check["timeout"], check["DeregisterCriticalServiceAfter"]) == (
        "200ms",
        "1s",
        "1m",
    )
    assert (body["name"], body["id"], body["port"], body["tags"]) == ("svc-a", "svc-a-1", port_one, ["v1"])


def test_the_fake_rejects_unknown_fields_as_consul_does(fake: FakeConsul) -> None:
    url = f"{fake.url}/v1/agent/service/register"
    assert (
        requests.put(
            url, json={"Name": "svc-a", "Port": 1, "deregister_critical_service_after": "1m"}
        ).status_code
        == 400
    )
    answer = requests.put(url, json={"Name": "svc-a", "Port": 1, "Weight": 3}, timeout=5)
    assert answer.status_code == 400 and "invalid keys: Weight" in answer.text
    nested = requests.put(
        url, json={"name": "svc-a", "check": {"http": "http://127.0.0.1:1/", "interval": "1s", "x": 1}}
    )
    assert nested.status_code == 400 and "'Check' has invalid keys: x" in nested.text
    assert requests.put(url, json={"name": "svc-a", "port": 1}, timeout=5).status_code == 200


def test_a_refused_registration_is_a_clear_error(fake: FakeConsul) -> None:
    adapter = adapter_for(fake)
    with pytest.raises(ConsulError, match=r"register svc-a-1: .*400.*Interval must be > 0"):
        adapter.register(registration("svc-a", "svc-a-1", 9000, check_interval="0s"))
    with pytest.raises(ValueError, match="port"):
        registration("svc-a", "svc-a-1", 0)
    with pytest.raises(ValueError, match="not a duration"):
        registration("svc-a", "svc-a-1", 9000, deregister_after="soon")
    assert adapter.deregister("nope") is False


async def test_node_address_is_used_when_the_service_has_none(fake: FakeConsul) -> None:
    requests.put(
        f"{fake.url}/v1/agent/service/register", json={"Name": "svc-b", "ID": "b1", "Port": 7001}, timeout=5
    )
    index, instances = adapter_for(fake).healthy("svc-b")
    assert index == fake.index
    assert [(i.instance_id, i.host, i.port) for i in instances] == [("b1", "127.0.0.1", 7001)]


def test_the_configured_token_and_address_win_over_consul_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeConsul(required_token="s3cret") as agent:
        monkeypatch.setenv("CONSUL_HTTP_TOKEN", "stale-token-from-the-shell")
        monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{free_port()}")  # nothing listens there
        adapter = ConsulAdapter(ConsulConfig(address=agent.url, token="s3cret"))
        assert adapter.healthy("svc-a")[1] == []
        assert {r.token for r in agent.requests} == {"s3cret"}

        # the Consul variables are honoured when nothing explicit is configured
        host_port = agent.url.removeprefix("http://")
        from_env = ConsulConfig.from_env({"CONSUL_HTTP_ADDR": host_port, "CONSUL_HTTP_TOKEN": "s3cret"})
        assert ConsulAdapter(from_env).healthy("svc-a")[1] == []
        wrong = ConsulAdapter(
            ConsulConfig.from_env({"CONSUL_HTTP_ADDR": host_port, "CONSUL_HTTP_TOKEN": "x"})
        )
        with pytest.raises(ConsulError, match=r"403|Permission denied"):
            wrong.healthy("svc-a")
    with pytest.raises(DiscoveryConfigError, match="must be http"):
        ConsulConfig.from_env({"CONSUL_HTTP_ADDR": "ftp://somewhere:1"})


async def test_blocking_queries_follow_the_index_and_reset_when_it_goes_backwards(fake: FakeConsul) -> None:
    requests.put(
        f"{fake.url}/v1/agent/service/register", json={"Name": "svc-c", "ID": "c1", "Port": 7101}, timeout=5
    )
    resolver = ConsulResolver(adapter_for(fake, wait=1.0), min_interval=0)
    assert ids(await resolver.resolve("svc-c")) == {"c1"}
    stats = resolver.stats("svc-c")
    assert stats is not None

    # a blocking query is parked; a change wakes it and the cache follows
    await poll_until(lambda: fake.health_requests("svc-c"), lambda rs: len(rs) >= 2)
    parked = fake.health_requests("svc-c")[1]
    assert parked.query["index"] == str(fake.index) and parked.query["wait"] == "1s"
    assert "passing" in parked.query
    requests.put(
        f"{fake.url}/v1/agent/service/register", json={"Name": "svc-c", "ID": "c2", "Port": 7102}, timeout=5
    )
    await poll_until(lambda: resolver.resolve("svc-c"), lambda r: ids(r) == {"c1", "c2"})

    # the index goes backwards: the next query is a plain one (no index), then blocking resumes
    fake.set_index(3)
    await poll_until(lambda: stats.index_resets, lambda n: n >= 1)
    await poll_until(
        lambda: [r.query.get("index") for r in fake.health_requests("svc-c")], lambda q: "3" in q
    )
    sent = [r.query.get("index") for r in fake.health_requests("svc-c")]
    reset_at = sent.index("3")
    assert sent[reset_at - 1] is None  # the plain query that followed the reset

    # an index below 1 is never used for blocking
    fake.set_index(0)
    await poll_until(
        lambda: [r.query.get("index") for r in fake.health_requests("svc-c")], lambda q: "1" in q
    )
    assert "0" not in [r.query.get("index") for r in fake.health_requests("svc-c")]
    assert ids(await resolver.resolve("svc-c")) == {"c1", "c2"}
    await resolver.aclose()


async def test_blocking_queries_outlast_wait_plus_the_largest_jitter() -> None:
    with FakeConsul(jitter="max") as agent:  # holds every blocking query for wait * 17/16
        adapter = adapter_for(agent, wait=1.0, request_timeout=0.5)
        timeout = adapter.http_timeout(blocking=True)
        assert timeout is not None and timeout > 1.0 * 17 / 16
        resolver = ConsulResolver(adapter, min_interval=0)
        assert await resolver.resolve("svc-d") == []
        stats = resolver.stats("svc-d")
        assert stats is not None
        await poll_until(lambda: stats.requests, lambda n: n >= 4, bound=60)
        assert stats.errors == 0
        await resolver.aclose()


async def test_errors_back_off_and_the_last_answer_is_served_meanwhile(fake: FakeConsul) -> None:
    requests.put(
        f"{fake.url}/v1/agent/service/register", json={"Name": "svc-e", "ID": "e1", "Port": 7201}, timeout=5
    )
    fake.fail_next(3)
    resolver = ConsulResolver(adapter_for(fake, wait=1.0), backoff_base=0.05, backoff_cap=1.0, min_interval=0)
    with pytest.raises(UpstreamUnavailableError, match="500"):
        await resolver.resolve("svc-e")  # the first answer is an error, and nothing is known yet
    assert ids(await poll_until(lambda: _or_none(resolver, "svc-e"), lambda r: r is not None)) == {"e1"}
    stats = resolver.stats("svc-e")
    assert stats is not None and stats.errors == 3
    assert stats.backoffs == sorted(stats.backoffs) and all(0 < d <= 1.0 for d in stats.backoffs)

    fake.fail_next(1000)
    await poll_until(lambda: stats.errors, lambda n: n >= 5)  # the parked query ended; new ones fail
    requests.put(
        f"{fake.url}/v1/agent/service/register", json={"Name": "svc-e", "ID": "e2", "Port": 7202}, timeout=5
    )
    await poll_until(lambda: stats.errors, lambda n: n >= 6)
    assert ids(await resolver.resolve("svc-e")) == {"e1"}  # stale but served
    fake.fail_next(0)
    await poll_until(lambda: resolver.resolve("svc-e"), lambda r: ids(r) == {"e1", "e2"})
    await resolver.aclose()


async def _or_none(resolver: ConsulResolver, service: str):
    try:
        return await resolver.resolve(service)
    except UpstreamUnavailableError:
        return None


async def test_an_unreachable_agent_is_a_clear_error() -> None:
    adapter = ConsulAdapter(
        ConsulConfig(address=f"http://127.0.0.1:{free_port()}", wait=1.0, request_timeout=1.0)
    )
    resolver = ConsulResolver(adapter, backoff_base=0.05)
    with pytest.raises(UpstreamUnavailableError, match="cannot resolve 'svc-a': consul health of svc-a"):
        await resolver.resolve("svc-a")
    await resolver.aclose()


def test_name_based_intentions(fake: FakeConsul) -> None:
    adapter = adapter_for(fake)
    if FLAVOUR == PYTHON_CONSUL2:
        assert not adapter.supports_named_intentions
        with pytest.raises(ConsulFeatureError, match="need py-consul"):
            adapter.upsert_intention("svc-b", "svc-a", "allow")
        assert not [r for r in fake.requests if "intentions" in r.path]  # nothing half-done
        return
    assert adapter.supports_named_intentions
    assert adapter.intention("svc-b", "svc-a") is None
    adapter.upsert_intention("svc-b", "svc-a", "allow")
    adapter.upsert_intention("svc-c", "svc-a", "deny")
    assert adapter.intention("svc-b", "svc-a") == "allow"
    assert adapter.intention("svc-c", "svc-a") == "deny"
    put = next(r for r in fake.requests if r.method == "PUT" and "intentions" in r.path)
    assert put.path == "/v1/connect/intentions/exact"
    assert put.query == {"source": "svc-b", "destination": "svc-a"}
    assert put.body == {"SourceType": "consul", "Action": "allow"}
    adapter.delete_intention("svc-b", "svc-a")
    assert adapter.intention("svc-b", "svc-a") is None
    with pytest.raises(ValueError, match="allow"):
        adapter.upsert_intention("svc-b", "svc-a", "permit")  # type: ignore[arg-type]


async def test_an_instance_is_registered_for_the_lifetime_of_its_app(fake: FakeConsul) -> None:
    adapter = adapter_for(fake, wait=1.0)
    resolver = ConsulResolver(adapter, min_interval=0, max_watches=1)
    with http_server("app") as (_proc, port):
        async with registered(adapter, registration("svc-f", "svc-f-1", port)):
            await poll_until(lambda: resolver.resolve("svc-f"), lambda r: ids(r) == {"svc-f-1"})
            assert "svc-f-1" in fake.services
        assert "svc-f-1" not in fake.services
        await poll_until(lambda: resolver.resolve("svc-f"), lambda r: r == [])
    with pytest.raises(UpstreamUnavailableError, match="already watching 1 services"):
        await resolver.resolve("svc-other")
    await resolver.aclose()
