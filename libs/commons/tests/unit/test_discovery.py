"""Static resolver parsing and the round-robin balancer with passive ejection (fake clock)."""

from __future__ import annotations

import pytest

from caravan_commons.discovery import (
    Balancer,
    DiscoveryConfigError,
    Instance,
    Resolver,
    StaticResolver,
    parse_instance,
)
from caravan_commons.errors import UpstreamUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def instances(n: int, service: str = "svc-a") -> list[Instance]:
    return [parse_instance(service, f"http://127.0.0.1:{8100 + i}") for i in range(n)]


def test_parse_instance() -> None:
    inst = parse_instance("svc-a", " http://127.0.0.1:8101 ")
    assert (inst.host, inst.port, inst.instance_id, inst.base_url) == (
        "127.0.0.1",
        8101,
        "127.0.0.1:8101",
        "http://127.0.0.1:8101",
    )
    assert parse_instance("s", "https://localhost").port == 443
    assert parse_instance("s", "http://[::1]:9000").base_url == "http://[::1]:9000"


@pytest.mark.parametrize(
    "url",
    ["127.0.0.1:8101", "ftp://127.0.0.1:21", "http://", "http://h:99999", "http://h:1/path", "http://h:1/?q"],
)
def test_bad_urls_are_refused_naming_the_service(url: str) -> None:
    with pytest.raises(DiscoveryConfigError, match="upstream 'svc-a'"):
        parse_instance("svc-a", url)


async def test_static_resolver_from_env() -> None:
    env = {
        "CARAVAN_UPSTREAM_SVC_A": "http://127.0.0.1:8101,http://127.0.0.1:8102",
        "CARAVAN_UPSTREAM_PAYMENTS": "http://127.0.0.1:8301",
        "CARAVAN_PORT": "8000",
    }
    resolver = StaticResolver.from_env(env)
    assert isinstance(resolver, Resolver)
    assert resolver.services == ["payments", "svc-a"]
    assert [i.port for i in await resolver.resolve("svc-a")] == [8101, 8102]
    assert await resolver.resolve("svc-z") == []


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(DiscoveryConfigError, match="CARAVAN_UPSTREAM_SVC_B: upstream 'svc-b'"):
        StaticResolver.from_env({"CARAVAN_UPSTREAM_SVC_B": "http://127.0.0.1:1,oops"})
    with pytest.raises(DiscoveryConfigError, match="no instance URL"):
        StaticResolver({"svc-a": [" "]})


def test_round_robin() -> None:
    balancer = Balancer()
    pool = instances(3)
    assert [balancer.pick("svc-a", pool).port for _ in range(6)] == [8100, 8101, 8102, 8100, 8101, 8102]


def test_failing_instance_is_ejected_for_the_cooldown_then_returns() -> None:
    clock = Clock()
    balancer = Balancer(eject_after=2, eject_cooldown=10.0, clock=clock)
    pool = instances(2)
    bad = pool[0]
    balancer.report_failure(bad)
    assert not balancer.is_ejected(bad)  # one failure is not enough
    balancer.report_failure(bad)
    assert balancer.is_ejected(bad)
    assert {balancer.pick("svc-a", pool).port for _ in range(6)} == {8101}
    clock.now += 10.0
    assert not balancer.is_ejected(bad)
    assert {balancer.pick("svc-a", pool).port for _ in range(6)} == {8100, 8101}


def test_success_resets_the_failure_count() -> None:
    balancer = Balancer(eject_after=2, clock=Clock())
    inst = instances(1)[0]
    balancer.report_failure(inst)
    balancer.report_success(inst)
    balancer.report_failure(inst)
    assert not balancer.is_ejected(inst)


def test_all_ejected_falls_back_to_every_instance() -> None:
    balancer = Balancer(eject_after=1, clock=Clock())
    pool = instances(2)
    for inst in pool:
        balancer.report_failure(inst)
    assert {balancer.pick("svc-a", pool).port for _ in range(4)} == {8100, 8101}


def test_avoid_skips_the_instance_that_just_failed() -> None:
    balancer = Balancer()
    pool = instances(2)
    assert all(balancer.pick("svc-a", pool, avoid=pool[0]) == pool[1] for _ in range(4))
    assert balancer.pick("svc-a", pool[:1], avoid=pool[0]) == pool[0]  # nothing else to go to


def test_no_healthy_instance_is_upstream_unavailable() -> None:
    pool = [Instance(service="svc-a", instance_id="x", host="127.0.0.1", port=1, healthy=False)]
    with pytest.raises(
        UpstreamUnavailableError, match="no healthy instance of 'svc-a': all 1 are marked unhealthy"
    ):
        Balancer().pick("svc-a", pool)
    with pytest.raises(UpstreamUnavailableError, match="discovery lists none"):
        Balancer().pick("svc-a", [])
