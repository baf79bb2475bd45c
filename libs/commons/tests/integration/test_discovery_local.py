"""The local backend for real: HTTP server processes, the runtime's health checker running as a
process, and LocalCatalogResolver reading what it writes. Outcomes are polled with a generous
bound; nothing asserts a duration."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_runtime_support import health_checker, http_server, poll_until, write_instances

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery_local import LocalCatalogResolver, default_catalog_path
from caravan_commons.errors import UpstreamUnavailableError


def ids(instances) -> set[str]:
    return {i.instance_id for i in instances}


async def test_a_killed_instance_leaves_the_ready_set_and_a_new_one_joins(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with (
        http_server("one") as (one, port_one),
        http_server("two") as (_two, port_two),
        http_server("three") as (_three, port_three),
    ):
        write_instances(
            state,
            {
                "svc-a": [
                    {"id": "svc-a-1", "host": "127.0.0.1", "port": port_one, "ready_path": "/health/ready"},
                    {"id": "svc-a-2", "host": "127.0.0.1", "port": port_two, "ready_path": "/health/ready"},
                ]
            },
        )
        resolver = LocalCatalogResolver(default_catalog_path(state))
        with health_checker(state, interval=0.2) as checker:
            assert (
                await poll_until(lambda: _resolve_or_none(resolver, "svc-a"), lambda r: r is not None)
                is not None
            )
            both = await poll_until(
                lambda: resolver.resolve("svc-a"), lambda r: ids(r) == {"svc-a-1", "svc-a-2"}
            )
            assert {i.port for i in both} == {port_one, port_two}
            assert all(i.host == "127.0.0.1" and i.healthy for i in both)

            one.kill()
            one.wait()
            survivors = await poll_until(
                lambda: resolver.resolve("svc-a"), lambda r: ids(r) != {"svc-a-1", "svc-a-2"}
            )
            assert ids(survivors) == {"svc-a-2"}

            # the runtime starts a third instance: it joins once its ready path answers
            write_instances(
                state,
                {
                    "svc-a": [
                        {"id": "svc-a-1", "host": "127.0.0.1", "port": port_one},
                        {"id": "svc-a-2", "host": "127.0.0.1", "port": port_two},
                        {"id": "svc-a-3", "host": "127.0.0.1", "port": port_three},
                    ]
                },
            )
            after = await poll_until(lambda: resolver.resolve("svc-a"), lambda r: "svc-a-3" in ids(r))
            assert ids(after) == {"svc-a-2", "svc-a-3"}
            assert await resolver.resolve("svc-unknown") == []
            assert checker.poll() is None


async def _resolve_or_none(resolver: LocalCatalogResolver, service: str):
    try:
        return await resolver.resolve(service)
    except UpstreamUnavailableError:
        return None


async def test_a_service_client_follows_the_catalogue_when_an_instance_dies(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with http_server("one") as (one, port_one), http_server("two") as (_two, port_two):
        write_instances(
            state,
            {
                "svc-a": [
                    {"id": "a1", "host": "127.0.0.1", "port": port_one},
                    {"id": "a2", "host": "127.0.0.1", "port": port_two},
                ]
            },
        )
        resolver = LocalCatalogResolver(default_catalog_path(state))
        with health_checker(state, interval=0.2):
            await poll_until(
                lambda: _resolve_or_none(resolver, "svc-a"), lambda r: r is not None and len(r) == 2
            )
            async with ServiceClient(resolver, ClientConfig(max_attempts=1, eject_after=1)) as client:
                bodies = {(await client.get("svc-a", "/")).text for _ in range(4)}
                assert bodies == {"one", "two"}
                one.kill()
                one.wait()
                await poll_until(lambda: resolver.resolve("svc-a"), lambda r: ids(r) == {"a2"})
                bodies = [(await client.get("svc-a", "/")).text for _ in range(6)]
        assert bodies == ["two"] * 6


async def test_without_a_catalogue_resolution_fails_with_a_clear_error(tmp_path: Path) -> None:
    resolver = LocalCatalogResolver(tmp_path / "runtime" / "catalog.json")
    with pytest.raises(UpstreamUnavailableError, match="does not exist"):
        await resolver.resolve("svc-a")
