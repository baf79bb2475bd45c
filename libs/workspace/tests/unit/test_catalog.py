"""instances.json validation and atomic writing; the checker's command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from caravan_workspace.runtime.catalog import (
    CatalogError,
    InstanceSpec,
    add_instance,
    checker_command,
    instances_path,
    read_instances,
    remove_instance,
    write_instances,
)

GOOD = {"svc-a": [{"id": "svc-a-1", "host": "127.0.0.1", "port": 18100, "ready_path": "/health/ready"}]}


def test_round_trip_with_dicts_and_specs(tmp_path: Path) -> None:
    path = write_instances(tmp_path, {**GOOD, "svc-b": [InstanceSpec(id="b1", host="127.0.0.1", port=18200)]})
    assert path == instances_path(tmp_path)
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert document["services"]["svc-b"] == [
        {"id": "b1", "host": "127.0.0.1", "port": 18200, "ready_path": "/health/ready"}
    ]
    assert read_instances(tmp_path)["svc-a"] == [InstanceSpec("svc-a-1", "127.0.0.1", 18100, "/health/ready")]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Svc A": []}, "service name 'Svc A'"),
        ({"svc-a": [{"id": "x", "host": "10.0.0.5", "port": 1}]}, "not a loopback address"),
        ({"svc-a": [{"id": "x", "host": "127.0.0.1", "port": 70000}]}, "port 70000"),
        ({"svc-a": [{"id": "x", "host": "127.0.0.1", "port": "80"}]}, "port '80'"),
        ({"svc-a": [{"id": "x", "host": "127.0.0.1", "port": 80, "ready_path": "health"}]}, "ready_path"),
        ({"svc-a": [{"id": "x", "host": "127.0.0.1", "port": 80, "weight": 2}]}, "unknown field(s) weight"),
        ({"svc-a": [{"id": "x y", "host": "127.0.0.1", "port": 80}]}, "id 'x y'"),
        (
            {
                "svc-a": [
                    {"id": "x", "host": "127.0.0.1", "port": 80},
                    {"id": "x", "host": "127.0.0.1", "port": 81},
                ]
            },
            "duplicate instance id",
        ),
        (
            {
                "svc-a": [{"id": "a", "host": "127.0.0.1", "port": 80}],
                "svc-b": [{"id": "b", "host": "127.0.0.1", "port": 80}],
            },
            "already used by svc-a/a",
        ),
        ({"svc-a": "127.0.0.1:80"}, "instances must be a list"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path, mapping, message: str) -> None:
    write_instances(tmp_path, GOOD)
    before = instances_path(tmp_path).read_bytes()
    with pytest.raises(CatalogError) as info:
        write_instances(tmp_path, mapping)
    assert message in str(info.value)
    assert instances_path(tmp_path).read_bytes() == before
    leftovers = {p.name for p in instances_path(tmp_path).parent.iterdir()} - {
        "instances.json",
        ".instances.lock",
    }
    assert leftovers == set()  # no temporary file left behind


def test_checker_command_and_cli_errors(tmp_path: Path) -> None:
    command = checker_command(tmp_path, interval=0.5, python="/usr/bin/python3")
    assert command == [
        "/usr/bin/python3",
        "-m",
        "caravan_workspace.runtime.catalog",
        "--state-dir",
        str(tmp_path.resolve()),
        "--interval",
        "0.5",
    ]
    with pytest.raises(ValueError):
        checker_command(tmp_path, interval=0)
    base = [sys.executable, "-m", "caravan_workspace.runtime.catalog"]
    for args, message in [
        (["--state-dir", str(tmp_path / "missing")], "is not a folder"),
        (["--state-dir", str(tmp_path), "--interval", "0"], "must be greater than 0"),
        (["--state-dir", str(tmp_path), "--interval", "1", "--timeout", "2"], "must not exceed --interval"),
    ]:
        proc = subprocess.run(base + args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr


def test_once_reports_a_bad_instances_file_in_one_line(tmp_path: Path) -> None:
    instances_path(tmp_path).parent.mkdir(parents=True)
    instances_path(tmp_path).write_text('{"version": 1, "services": {"svc-a": [{"id": "a"}]}}')
    proc = subprocess.run(
        [sys.executable, "-m", "caravan_workspace.runtime.catalog", "--state-dir", str(tmp_path), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "instance #0" in proc.stderr


def test_add_and_remove_single_instances(tmp_path: Path) -> None:
    add_instance(tmp_path, "svc-a", {"id": "a1", "host": "127.0.0.1", "port": 18101})
    add_instance(tmp_path, "svc-a", InstanceSpec(id="a2", host="127.0.0.1", port=18102))
    add_instance(tmp_path, "svc-a", {"id": "a1", "host": "127.0.0.1", "port": 18103})  # replaced by id
    assert [(s.id, s.port) for s in read_instances(tmp_path)["svc-a"]] == [("a2", 18102), ("a1", 18103)]
    with pytest.raises(CatalogError, match="already used by svc-a/a2"):
        add_instance(tmp_path, "svc-b", {"id": "b1", "host": "127.0.0.1", "port": 18102})
    assert remove_instance(tmp_path, "svc-a", "a2") is True
    assert remove_instance(tmp_path, "svc-a", "a2") is False
    assert remove_instance(tmp_path, "svc-a", "a1") is True
    assert read_instances(tmp_path) == {}
