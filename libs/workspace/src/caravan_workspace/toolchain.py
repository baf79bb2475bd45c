"""The toolchain report: what the workspace needs, what is present, and how to install the rest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tool:
    name: str
    command: str
    purpose: str
    install: str
    required: bool = False
    version_args: tuple[str, ...] = ("--version",)


TOOLS: tuple[Tool, ...] = (
    Tool("uv", "uv", "virtualenvs and package resolution", "pip install uv", required=True),
    Tool("invoke", "invoke", "the workspace CLI", "pip install invoke", required=True),
    Tool("nox", "nox", "test sessions", "pip install nox", required=True),
    Tool("git", "git", "the workspace repository", "apt-get install git", required=True),
    Tool("graphviz", "dot", "invoke plan --graph", "apt-get install graphviz", version_args=("-V",)),
    Tool("postgres", "pg_ctlcluster", "Postgres databases (tests, services)", "apt-get install postgresql"),
    Tool("docker", "docker", "images and the Docker target (stage 14)", "apt-get install docker.io"),
    Tool(
        "debootstrap",
        "debootstrap",
        "the Debian base image where no registry is reachable (stage 14)",
        "apt-get install debootstrap",
    ),
    Tool("prometheus", "prometheus", "monitoring (stages 2, 15)", "apt-get install prometheus"),
    Tool("promtool", "promtool", "checking Prometheus config and rules", "apt-get install prometheus"),
    Tool(
        "alertmanager",
        "prometheus-alertmanager",
        "alerts (stage 15)",
        "apt-get install prometheus-alertmanager",
    ),
    Tool(
        "kubectl",
        "kubectl",
        "rendering Kubernetes manifests (stage 14)",
        "see kubernetes.io/docs/tasks/tools",
    ),
    Tool("wrk", "wrk", "benchmarks", "apt-get install wrk"),
    Tool(
        "caddy", "caddy", "the gateway benchmark's anchor", "apt-get install caddy", version_args=("version",)
    ),
)


@dataclass(frozen=True)
class ToolStatus:
    tool: Tool
    path: str | None
    version: str


def _version(path: str, args: tuple[str, ...]) -> str:
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0][:60] if out else "?"


def locate(command: str) -> str | None:
    """A command on PATH, or beside the running interpreter (the workspace virtualenv's bin/)."""
    found = shutil.which(command)
    if found:
        return found
    sibling = Path(sys.executable).parent / command
    return str(sibling) if sibling.is_file() else None


def survey() -> list[ToolStatus]:
    statuses = [
        ToolStatus(
            Tool("python", sys.executable, "the workspace", "Python 3.11+", required=True),
            sys.executable,
            sys.version.split()[0],
        )
    ]
    for tool in TOOLS:
        path = locate(tool.command)
        statuses.append(ToolStatus(tool, path, _version(path, tool.version_args) if path else ""))
    return statuses
