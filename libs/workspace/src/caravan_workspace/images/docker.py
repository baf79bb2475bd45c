"""A thin wrapper over the ``docker`` command line: every call is one subprocess, errors become
:class:`DockerError` with one line for the user, and a missing engine names the exact fix."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

INSTALL_FIX = (
    "install and start a Docker engine: `apt-get install docker.io`, then `dockerd &` where no "
    "init system runs (or `systemctl start docker`)"
)


class DockerError(Exception):
    """The Docker engine refused or is missing; the message is one line, ``fix`` says what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def docker_bin() -> str:
    found = shutil.which("docker")
    if found is None:
        raise DockerError("the docker command is not installed", fix=INSTALL_FIX)
    return found


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """``docker ARGS``; with ``check`` a non-zero exit raises DockerError with docker's last line."""
    done = subprocess.run(
        [docker_bin(), *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["failed"])[-1]
        raise DockerError(f"docker {args[0]}: {last}")
    return done


def ensure_engine() -> str:
    """The engine's server version; DockerError with the exact fix when it cannot be reached."""
    done = run(["version", "--format", "{{.Server.Version}}"], check=False, timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise DockerError(f"no Docker engine answers ({reason})", fix=INSTALL_FIX)
    return done.stdout.strip()


def image_exists(tag: str) -> bool:
    return run(["image", "inspect", "--format", "{{.Id}}", tag], check=False).returncode == 0


def inspect(kind: str, name: str) -> dict[str, Any] | None:
    """``docker <kind> inspect NAME`` as a dict, or None when it does not exist."""
    done = run([kind, "inspect", name], check=False)
    if done.returncode != 0:
        return None
    data = json.loads(done.stdout or "[]")
    return data[0] if data else None


def image_labels(tag: str) -> dict[str, str]:
    info = inspect("image", tag) or {}
    return dict((info.get("Config") or {}).get("Labels") or {})


def image_size(tag: str) -> int:
    info = inspect("image", tag) or {}
    return int(info.get("Size") or 0)
