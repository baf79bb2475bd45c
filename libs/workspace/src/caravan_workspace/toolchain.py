"""The toolchain: what the workspace needs, what is present, and how to install the rest.

Tools that come as Debian packages and that a stage needs (``stages``) are *system packages*:
:func:`install_missing` installs the missing ones on Debian/Ubuntu — as root with apt-get, with
passwordless sudo through sudo — and otherwise stops with the one command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
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
    package: str | None = None  # the Debian package that provides it
    stages: tuple[int, ...] = ()  # the stages that need it (they fail without it)


TOOLS: tuple[Tool, ...] = (
    Tool("uv", "uv", "virtualenvs and package resolution", "pip install uv", required=True),
    Tool("invoke", "invoke", "the workspace CLI", "pip install invoke", required=True),
    Tool("nox", "nox", "test sessions", "pip install nox", required=True),
    Tool("git", "git", "the workspace repository", "apt-get install git", required=True),
    Tool(
        "graphviz",
        "dot",
        "invoke plan --graph",
        "apt-get install graphviz",
        version_args=("-V",),
        package="graphviz",
        stages=(1,),
    ),
    Tool("postgres", "pg_ctlcluster", "Postgres databases (tests, services)", "apt-get install postgresql"),
    Tool(
        "docker",
        "docker",
        "images and the Docker target (stage 14)",
        "apt-get install docker.io",
        package="docker.io",
        stages=(14,),
    ),
    Tool(
        "debootstrap",
        "debootstrap",
        "the Debian base image where no registry is reachable (stage 14)",
        "apt-get install debootstrap",
        package="debootstrap",
        stages=(14,),
    ),
    Tool(
        "prometheus",
        "prometheus",
        "monitoring (stages 2, 15)",
        "apt-get install prometheus",
        package="prometheus",
        stages=(2, 15),
    ),
    Tool(
        "promtool",
        "promtool",
        "checking Prometheus config and rules",
        "apt-get install prometheus",
        package="prometheus",
        stages=(2, 15),
    ),
    Tool(
        "alertmanager",
        "prometheus-alertmanager",
        "alerts (stage 15)",
        "apt-get install prometheus-alertmanager",
        package="prometheus-alertmanager",
        stages=(2, 15),
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
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")  # debootstrap
    if found:
        return found
    sibling = Path(sys.executable).parent / command
    return str(sibling) if sibling.is_file() else None


def survey(*, versions: bool = True) -> list[ToolStatus]:
    """Every tool, where it is and (``versions``) its version."""
    statuses = [
        ToolStatus(
            Tool("python", sys.executable, "the workspace", "Python 3.11+", required=True),
            sys.executable,
            sys.version.split()[0],
        )
    ]
    for tool in TOOLS:
        path = locate(tool.command)
        version = _version(path, tool.version_args) if path and versions else ""
        statuses.append(ToolStatus(tool, path, version))
    return statuses


# ---------------------------------------------------------------------- system packages


class InstallError(Exception):
    """The system packages cannot be installed from here; the message says what to run."""


def missing_packages(statuses: list[ToolStatus] | None = None) -> list[str]:
    """The Debian packages of the tools some stage needs that are not present, in order."""
    statuses = survey(versions=False) if statuses is None else statuses
    found: list[str] = []
    for s in statuses:
        if s.tool.package and s.tool.stages and not s.path and s.tool.package not in found:
            found.append(s.tool.package)
    return found


def apt_commands(packages: list[str], *, sudo: bool) -> list[list[str]]:
    prefix = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"] if sudo else []
    return [
        [*prefix, "apt-get", "update", "-q"],
        [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ]


def manual_command(packages: list[str]) -> str:
    return f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {' '.join(packages)}"


def _passwordless_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    done = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False, timeout=30)
    return done.returncode == 0


def install_missing(say: Callable[[str], None] = print) -> list[str]:
    """Install the system packages the stages need that are missing; returns what it installed.

    As root: apt-get. Otherwise with passwordless sudo: sudo apt-get. Otherwise (or without
    apt-get) :class:`InstallError` with the one command to run."""
    packages = missing_packages()
    if not packages:
        return []
    if shutil.which("apt-get") is None:
        raise InstallError(
            f"the stages need {', '.join(packages)}, and this is not a Debian/Ubuntu machine (no "
            "apt-get): install them with its package manager"
        )
    if os.geteuid() == 0:
        sudo = False
    elif _passwordless_sudo():
        sudo = True
    else:
        raise InstallError(
            f"the stages need system packages that are missing ({', '.join(packages)}); "
            f"run:\n  {manual_command(packages)}"
        )
    say(f"installing system packages{' with sudo' if sudo else ''}: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in apt_commands(packages, sudo=sudo):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]
            raise InstallError(
                f"{' '.join(command[:4])} … failed: {last}; run:\n  {manual_command(packages)}"
            )
    still = missing_packages()
    if still:
        raise InstallError(f"installed, yet still missing: {', '.join(still)}")
    return packages
