"""LocalCatalogResolver on files written by the test: change detection, bad files, staleness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from caravan_commons.discovery_local import LocalCatalogResolver
from caravan_commons.errors import UpstreamUnavailableError


def entry(instance_id: str, port: int, ready: bool) -> dict[str, object]:
    return {
        "id": instance_id,
        "host": "127.0.0.1",
        "port": port,
        "ready_path": "/health/ready",
        "ready": ready,
        "checked_at": 1000.0,
        "status": 200 if ready else None,
        "error": None if ready else "Connect call failed",
    }


def write(path: Path, services: dict[str, list[dict[str, object]]], written_at: float = 1000.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"version": 1, "interval_s": 1.0, "written_at": written_at, "services": services})
    )
    tmp.replace(path)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_only_ready_instances_are_returned(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    write(path, {"svc-a": [entry("a1", 9001, True), entry("a2", 9002, False)]})
    resolver = LocalCatalogResolver(path, stat_interval=0)
    got = await resolver.resolve("svc-a")
    assert [(i.instance_id, i.base_url) for i in got] == [("a1", "http://127.0.0.1:9001")]
    assert await resolver.resolve("svc-b") == []


async def test_the_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    clock = Clock()
    write(path, {"svc-a": [entry("a1", 9001, True)]})
    resolver = LocalCatalogResolver(path, stat_interval=0.5, clock=clock)
    assert len(await resolver.resolve("svc-a")) == 1
    write(path, {"svc-a": [entry("a1", 9001, False)]})
    assert len(await resolver.resolve("svc-a")) == 1  # not looked at again before stat_interval
    clock.now = 1.0
    assert await resolver.resolve("svc-a") == []
    first = resolver.document
    clock.now = 2.0
    assert resolver.document is first  # unchanged file: not decoded again


async def test_a_corrupt_or_missing_file_keeps_the_last_good_answer(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    write(path, {"svc-a": [entry("a1", 9001, True)]})
    resolver = LocalCatalogResolver(path, stat_interval=0)
    assert len(await resolver.resolve("svc-a")) == 1
    path.write_text('{"version": 1, "services": {"svc-a": [{"id": 3}]}}')
    assert len(await resolver.resolve("svc-a")) == 1
    os.unlink(path)
    assert len(await resolver.resolve("svc-a")) == 1


async def test_a_bad_first_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"version": 7, "services": {}}')
    with pytest.raises(UpstreamUnavailableError, match="not a valid catalogue"):
        await LocalCatalogResolver(path).resolve("svc-a")


async def test_stale_after_fails_closed_when_the_checker_stopped_writing(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    write(path, {"svc-a": [entry("a1", 9001, True)]}, written_at=1000.0)
    wall = Clock()
    wall.now = 1002.0
    resolver = LocalCatalogResolver(path, stat_interval=0, stale_after=5.0, wall_clock=wall)
    assert len(await resolver.resolve("svc-a")) == 1
    wall.now = 1010.0
    assert resolver.is_stale() and await resolver.resolve("svc-a") == []
    lenient = LocalCatalogResolver(path, stat_interval=0, wall_clock=wall)
    assert len(await lenient.resolve("svc-a")) == 1
