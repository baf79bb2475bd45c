"""Client-side load balancing with passive ejection, through ServiceClient, against real HTTP servers
on 127.0.0.1. Outcomes are request counts per server; no timing is asserted (a FakeClock jumps
over cool-downs)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from upstream_server import FakeClock, serve, unused_port

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery import Instance, Resolver, StaticResolver, parse_instance
from caravan_commons.errors import ServerError, UpstreamUnavailableError

NO_RETRY = ClientConfig(max_attempts=1, eject_after=2, eject_cooldown=60.0, circuit_failure_threshold=1000)


class Switch:
    """A handler whose answer the test flips: 200 with the server's name, or 503."""

    def __init__(self, name: str, status: int = 200) -> None:
        self.name = name
        self.status = status

    async def __call__(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, text=self.name)


class MutableResolver(Resolver):
    """Discovery whose answer the test changes between calls (instances joining and leaving)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)

    async def resolve(self, service: str) -> list[Instance]:
        return [parse_instance(service, u) for u in self.urls]


async def _call(client: ServiceClient) -> str:
    try:
        return (await client.get("svc-a", "/")).text
    except ServerError as exc:
        return f"error {exc.status}"


async def test_round_robin_spreads_calls_evenly_over_real_servers() -> None:
    async with (
        serve(Switch("a")) as a,
        serve(Switch("b")) as b,
        serve(Switch("c")) as c,
        ServiceClient(StaticResolver({"svc-a": [a.url, b.url, c.url]}), NO_RETRY) as client,
    ):
        answers = [await _call(client) for _ in range(30)]
    assert (a.count(), b.count(), c.count()) == (10, 10, 10)
    assert sorted(set(answers)) == ["a", "b", "c"]


async def test_a_failing_instance_is_ejected_then_probed_again_after_the_cooldown() -> None:
    clock = FakeClock()
    bad = Switch("b", status=503)
    async with serve(Switch("a")) as a, serve(bad) as b:
        resolver = StaticResolver({"svc-a": [a.url, b.url]})
        async with ServiceClient(resolver, NO_RETRY, clock=clock) as client:
            answers = [await _call(client) for _ in range(24)]
            assert b.count() == 2  # ejected after eject_after=2 consecutive failures
            assert answers.count("error 503") == 2 and answers.count("a") == 22
            assert client.balancer.is_ejected(parse_instance("svc-a", b.url))

            bad.status = 200  # it recovers; after the cool-down it gets traffic again
            clock.advance(61.0)
            answers = [await _call(client) for _ in range(20)]
    assert answers.count("b") == 10 and answers.count("a") == 10


async def test_a_killed_instance_is_ejected_and_calls_keep_succeeding() -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    config = ClientConfig(
        max_attempts=3, eject_after=1, eject_cooldown=60.0, backoff_base=0.001, backoff_cap=0.002
    )
    async with (
        serve(Switch("a")) as a,
        serve(Switch("c")) as c,
        ServiceClient(StaticResolver({"svc-a": [a.url, dead, c.url]}), config) as client,
    ):
        answers = [await _call(client) for _ in range(30)]
        assert client.balancer.is_ejected(parse_instance("svc-a", dead))
    assert set(answers) == {"a", "c"}  # refused connections carried no request: retried elsewhere
    assert a.count() + c.count() == 30


async def test_when_every_instance_fails_calls_still_reach_them_panic_mode() -> None:
    async with (
        serve(Switch("a", 503)) as a,
        serve(Switch("b", 503)) as b,
        ServiceClient(StaticResolver({"svc-a": [a.url, b.url]}), NO_RETRY) as client,
    ):
        answers = [await _call(client) for _ in range(12)]
    assert answers == ["error 503"] * 12
    assert a.count() + b.count() == 12 and a.count() > 2 and b.count() > 2


async def test_discovery_churn_during_concurrent_traffic() -> None:
    # A burst of concurrent calls all picks a just-stopped instance before the first failure ejects
    # it: each such call needs one retry elsewhere, so the retry budget and the circuit threshold
    # are set above the burst here (their own limits are tested in test_client_http.py).
    config = ClientConfig(
        max_attempts=3,
        eject_after=1,
        eject_cooldown=60.0,
        backoff_base=0.001,
        backoff_cap=0.002,
        retry_budget_ratio=1.0,
        retry_budget_min_per_second=100,
        circuit_failure_threshold=1000,
    )
    async with serve(Switch("a")) as a, serve(Switch("b")) as b:
        resolver = MutableResolver([a.url, b.url])
        async with ServiceClient(resolver, config) as client:

            async def burst(n: int) -> list[str]:
                return await asyncio.gather(*(_call(client) for _ in range(n)))

            first = await burst(40)
            async with serve(Switch("c")) as c:
                resolver.urls.append(c.url)  # an instance joins
                second = await burst(60)
                assert c.count() > 0
                resolver.urls.remove(c.url)  # ...and is removed from discovery before it stops
            removed = parse_instance("svc-a", c.url)
            resolver.urls.append(c.url)  # discovery lags: it still lists the stopped instance
            third = await burst(60)
            resolver.urls.remove(c.url)
            fourth = await burst(20)
            assert removed.instance_id not in client.balancer.tracked("svc-a")  # no state kept for it
    assert all(answer in {"a", "b", "c"} for answer in first + second + third + fourth)
    assert set(fourth) == {"a", "b"}


async def test_no_instance_at_all_is_a_clear_503() -> None:
    async with ServiceClient(MutableResolver([]), NO_RETRY) as client:
        with pytest.raises(UpstreamUnavailableError, match="no healthy instance of 'svc-a'"):
            await client.get("svc-a", "/")
