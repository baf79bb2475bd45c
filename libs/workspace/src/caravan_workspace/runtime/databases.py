"""Databases on the local runtime: each service's own (a SQLite file in the state folder, or a
Postgres database of its own), and its migrations applied with its migrate command."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from caravan_workspace.registry import Context
from caravan_workspace.runtime.programs import RuntimeError_
from caravan_workspace.services import Service

POSTGRES_DSN_ENV = "CARAVAN_RUNTIME_POSTGRES_DSN"


def migrate_module(service: Service) -> str | None:
    """The service's migrate command module (house convention), or None while it has none."""
    module = f"{service.package}.infrastructure.db.migrate"
    path = (service.folder / "src" / Path(*module.split("."))).with_suffix(".py")
    return module if path.exists() else None


class Databases:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.data_dir = ctx.state_dir / "data"

    def url(self, service: Service) -> str:
        """The service's own database: a SQLite file in the state folder, or — when
        ``CARAVAN_RUNTIME_POSTGRES_DSN`` names a Postgres server (a role with CREATEDB) — a
        database of its own on that server, named after the state folder and the service (the
        service's migrate command creates it)."""
        dsn = os.environ.get(POSTGRES_DSN_ENV)
        if dsn:
            tag = hashlib.sha256(str(self.ctx.state_dir.resolve()).encode()).hexdigest()[:8]
            return urlunsplit(urlsplit(dsn)._replace(path=f"/caravan_{tag}_{service.package}"))
        return f"sqlite:///{self.data_dir / service.name}.sqlite3"

    def migrate(self, service: Service, python: Path, database_url: str | None = None) -> bool:
        """Apply the service's migrations (``python -m <package>.infrastructure.db.migrate``) to
        ``database_url`` (default: its own database); False when the service has none yet."""
        module = migrate_module(service)
        if module is None:
            return False
        if database_url is None:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.data_dir.chmod(0o700)
            database_url = self.url(service)
        self.ctx.progress(f"applying the migrations of {service.name}")
        done = subprocess.run(
            [str(python), "-m", module],
            cwd=service.folder,
            env={**os.environ, "CARAVAN_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            umask=0o077,  # a SQLite database it creates is the service's alone (0600)
        )
        if done.returncode != 0:
            last = ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]
            raise RuntimeError_(f"migrations of {service.name} failed: {last}")
        return True
