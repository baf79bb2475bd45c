"""Virtualenvs on the local runtime: each deployable runs from its own, built from its own project
with caravan-commons from the workspace package index, and rebuilt only when what it is built
from changed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.runtime.programs import RuntimeError_
from caravan_workspace.services import Service


class Environments:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def dir(self, name: str) -> Path:
        return self.ctx.state_dir / "venvs" / name

    def fingerprint(self, folder: Path) -> str:
        """What a virtualenv is built from: Python, its project (and lock), and the workspace's
        commons version — a new commons release rebuilds it, so it runs that release."""
        digest = hashlib.sha256(sys.version.encode())
        commons = self.ctx.root / "libs" / "commons" / "pyproject.toml"
        if commons.exists():
            version = tomllib.loads(commons.read_text(encoding="utf-8")).get("project", {}).get("version")
            digest.update(f"caravan-commons {version}".encode())
        for name in ("pyproject.toml", "uv.lock"):
            path = folder / name
            digest.update(name.encode() + (path.read_bytes() if path.exists() else b"-"))
        return digest.hexdigest()

    def ensure(self, service: Service, *, test: bool = False) -> Path:
        """The service's virtualenv (``test``: with its test dependency group), rebuilt only when
        its project or lock changed; returns its Python."""
        venv = self.dir(service.name + ("-test" if test else ""))
        self.build(service.folder, service.name, venv, test=test)
        return venv / "bin" / "python"

    def build(self, folder: Path, name: str, venv: Path, *, test: bool = False) -> bool:
        """Build ``venv`` from the project in ``folder`` (caravan-commons from the workspace index)
        unless it is current; True when it was (re)built."""
        stamp = venv / ".caravan-fingerprint"
        fingerprint = self.fingerprint(folder)
        if stamp.exists() and stamp.read_text() == fingerprint and (venv / "bin" / "python").exists():
            return False
        self.ctx.progress(f"building the virtualenv of {name}{' (tests)' if test else ''}")
        env = index.uv_env(self.ctx)  # caravan-commons from the workspace index, named "workspace"
        uv = index.uv_bin()
        steps = [
            [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             "-e", str(folder), *(["--group", str(folder / "pyproject.toml") + ":test"] if test else [])],
        ]  # fmt: skip
        for command in steps:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["uv failed"])[-1]
                raise RuntimeError_(f"cannot build the virtualenv of {name}: {last}")
        stamp.write_text(fingerprint)
        return True
