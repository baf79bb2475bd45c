"""System packages: which the stages need, and how `invoke toolchain --install` gets them — as
root with apt-get, with passwordless sudo through sudo, otherwise the one command and exit 2.

The decisions are tested here with the machine's facts (who we are, what is on PATH) stood in;
the real installation, as root in a clean Debian container, is tests/quickstart."""

from __future__ import annotations

import subprocess

import pytest

from caravan_workspace import toolchain
from caravan_workspace.toolchain import InstallError, ToolStatus, missing_packages


def status(name: str, present: bool) -> ToolStatus:
    tool = next(t for t in toolchain.TOOLS if t.name == name)
    return ToolStatus(tool, f"/usr/bin/{tool.command}" if present else None, "")


def test_the_stages_need_prometheus_alertmanager_graphviz_docker_and_debootstrap():
    needed = {t.package for t in toolchain.TOOLS if t.stages}
    assert needed == {"prometheus", "prometheus-alertmanager", "graphviz", "docker.io", "debootstrap"}


def test_missing_packages_lists_each_package_once_and_only_for_stage_tools():
    statuses = [
        status("prometheus", False),
        status("promtool", False),  # the same package
        status("graphviz", True),
        status("wrk", False),  # a benchmark tool: no stage needs it
        status("debootstrap", False),
    ]
    assert missing_packages(statuses) == ["prometheus", "debootstrap"]


@pytest.fixture
def machine(monkeypatch):
    """A Debian machine where prometheus and graphviz are missing; who we are is set per test."""
    facts = {"root": False, "sudo": False, "installed": False, "apt": True}
    calls: list[list[str]] = []

    def which(command, path=None):
        if command == "apt-get":
            return "/usr/bin/apt-get" if facts["apt"] else None
        if command in ("prometheus", "promtool", "dot") and not facts["installed"]:
            return None
        return f"/usr/bin/{command}"

    def run(command, **kwargs):
        calls.append(list(command))
        if "install" in command:
            facts["installed"] = True
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(toolchain.shutil, "which", which)
    monkeypatch.setattr(toolchain.subprocess, "run", run)
    monkeypatch.setattr(toolchain.os, "geteuid", lambda: 0 if facts["root"] else 1000)
    monkeypatch.setattr(toolchain, "_passwordless_sudo", lambda: facts["sudo"])
    return facts, calls


def test_as_root_it_installs_with_apt_get_and_says_what(machine):
    facts, calls = machine
    facts["root"] = True
    said: list[str] = []
    assert toolchain.install_missing(said.append) == ["graphviz", "prometheus"]
    assert said == ["installing system packages: graphviz prometheus"]
    assert calls == [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "graphviz", "prometheus"],
    ]


def test_with_passwordless_sudo_it_installs_through_sudo(machine):
    facts, calls = machine
    facts["sudo"] = True
    assert toolchain.install_missing(lambda line: None) == ["graphviz", "prometheus"]
    assert all(c[:2] == ["sudo", "-n"] for c in calls) and calls[-1][-2:] == ["graphviz", "prometheus"]


def test_otherwise_it_stops_before_doing_anything_with_the_one_command(machine):
    _, calls = machine
    with pytest.raises(InstallError) as raised:
        toolchain.install_missing(lambda line: None)
    assert calls == []
    assert str(raised.value).splitlines()[-1].strip() == (
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends graphviz prometheus"
    )


def test_nothing_missing_means_nothing_run(machine):
    facts, calls = machine
    facts["installed"] = True
    assert toolchain.install_missing(lambda line: None) == [] and calls == []


def test_without_apt_get_it_says_so(machine):
    facts, calls = machine
    facts["apt"] = False
    with pytest.raises(InstallError, match="not a Debian/Ubuntu machine"):
        toolchain.install_missing(lambda line: None)
    assert calls == []
