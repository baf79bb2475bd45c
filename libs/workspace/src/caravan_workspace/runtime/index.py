"""The workspace package index: pypiserver on loopback, run by the workspace's supervisord.

- Binds 127.0.0.1 only, on port 18900 by default (the first of the foundation's operations tier,
  and the URL every service's pyproject names); a configured port (``CARAVAN_INDEX_PORT``) or, when
  18900 is taken, one the runtime allocates is used instead, recorded in
  ``<state>/index/index.json`` and in the runtime's port book. Whatever the port, the workspace
  passes the real URL to every uv command it runs as ``UV_INDEX=workspace=<url>`` (uv lets a named
  index given on the command line or in ``UV_INDEX`` replace the one of the same name in a
  pyproject).
- Packages live in ``<state>/index/packages``. Upload requires authentication (``-a update``, an
  htpasswd file); downloads and the listing are anonymous — the server only listens on loopback.
- Credentials (user ``caravan`` + a random password) are generated at provisioning into
  ``<state>/index/credentials.json`` with permissions 0600; they never enter git.
- ``--disable-fallback``: a name the index does not hold is a 404, never a redirect to PyPI.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from caravan_workspace.foundation import FoundationError, load_foundation
from caravan_workspace.registry import Context
from caravan_workspace.runtime.ports import PortBook, PortCollision
from caravan_workspace.runtime.supervisor import Supervisor, free_port, port_in_use
from caravan_workspace.services import DeclarationError, load_services

HOST = "127.0.0.1"
# The first port of the foundation's operations tier (foundation/foundation.toml): the one port
# services' pyprojects name for the workspace index.
DEFAULT_PORT = 18900
INDEX_NAME = "workspace"  # the uv index name services use: [[tool.uv.index]] name = "workspace"
PROGRAM = "index"
USERNAME = "caravan"
PORT_ENV = "CARAVAN_INDEX_PORT"

# uv settings from the environment that would add or replace indexes behind our back.
_UV_INDEX_VARS = (
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_FIND_LINKS",
    "UV_CONFIG_FILE",
    "UV_NO_CONFIG",
    "UV_INDEX_STRATEGY",
    "UV_NO_SOURCES",
    # a surrounding environment (a nox session, an activated virtualenv) must not redirect the
    # virtualenvs the workspace builds
    "UV_PROJECT_ENVIRONMENT",
    "VIRTUAL_ENV",
    "UV_PYTHON",
)


class PackageIndexError(Exception):
    """The index could not be provisioned or reached; the message is one line."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def default_index_url(port: int = DEFAULT_PORT) -> str:
    return f"http://{HOST}:{port}/simple/"


def service_index_toml(port: int = DEFAULT_PORT) -> str:
    """The pyproject fragment that makes a project take caravan-commons from the workspace index only.

    ``explicit = true``: the index serves only the packages pinned to it in ``tool.uv.sources``;
    every other dependency comes from the default index (PyPI) — and caravan-commons never does.
    """
    return (
        "[[tool.uv.index]]\n"
        f'name = "{INDEX_NAME}"\n'
        f'url = "{default_index_url(port)}"\n'
        "explicit = true\n"
        "\n"
        "[tool.uv.sources]\n"
        f'caravan-commons = {{ index = "{INDEX_NAME}" }}\n'
    )


# ---------------------------------------------------------------------------- state and config


def _dir(ctx: Context) -> Path:
    return ctx.state_dir / "index"


def packages_dir(ctx: Context) -> Path:
    return _dir(ctx) / "packages"


def credentials_file(ctx: Context) -> Path:
    return _dir(ctx) / "credentials.json"


def htpasswd_file(ctx: Context) -> Path:
    return _dir(ctx) / "htpasswd"


def _record_file(ctx: Context) -> Path:
    return _dir(ctx) / "index.json"


def write_private(path: Path, text: str) -> None:
    """Write a secret file atomically with permissions 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def provision_credentials(ctx: Context) -> bool:
    """Create the upload credentials and the htpasswd file unless they exist. True when created."""
    creds_path, htpasswd = credentials_file(ctx), htpasswd_file(ctx)
    if creds_path.exists() and htpasswd.exists():
        return False
    from passlib.apache import HtpasswdFile
    from passlib.context import CryptContext

    password = secrets.token_urlsafe(24)
    write_private(creds_path, json.dumps({"username": USERNAME, "password": password}) + "\n")
    # A 192-bit random password needs no key stretching; few rounds keep uploads fast even where
    # passlib falls back to its pure-Python sha256_crypt (Python >= 3.13 has no crypt module).
    context = CryptContext(schemes=["sha256_crypt"], sha256_crypt__default_rounds=5000)
    ht = HtpasswdFile(context=context)
    ht.set_password(USERNAME, password)
    write_private(htpasswd, ht.to_string().decode())
    return True


def credentials(ctx: Context) -> Credentials:
    path = credentials_file(ctx)
    try:
        data = json.loads(path.read_text())
        return Credentials(username=str(data["username"]), password=str(data["password"]))
    except FileNotFoundError:
        raise PackageIndexError("the workspace index has no credentials yet: run `invoke stage 1`") from None
    except (ValueError, KeyError) as exc:
        raise PackageIndexError(f"{path} is damaged ({exc}): delete it and run `invoke stage 1`") from exc


def _configured_port() -> int | None:
    raw = os.environ.get(PORT_ENV)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PackageIndexError(f"{PORT_ENV}={raw!r} is not a TCP port number")
    return int(raw)


def _recorded_port(ctx: Context) -> int | None:
    try:
        return int(json.loads(_record_file(ctx).read_text())["port"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def index_port(ctx: Context) -> int:
    """The configured port, else the one recorded at provisioning, else the default."""
    return _configured_port() or _recorded_port(ctx) or DEFAULT_PORT


def index_url(ctx: Context) -> str:
    """The simple-API URL of the workspace index (what uv and pip read)."""
    return default_index_url(index_port(ctx))


def upload_url(ctx: Context) -> str:
    return f"http://{HOST}:{index_port(ctx)}/"


# ---------------------------------------------------------------------------- uv


def uv_bin() -> str:
    """The uv binary of the uv package this workspace depends on (a known version)."""
    from uv import find_uv_bin

    return find_uv_bin()


def uv_env(ctx: Context | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for uv subprocesses: index settings from the caller's environment removed, and
    (given a context) the workspace index's real URL bound to the name ``workspace``."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if k not in _UV_INDEX_VARS}
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    if ctx is not None:
        env["UV_INDEX"] = f"{INDEX_NAME}={index_url(ctx)}"
    return env


# ---------------------------------------------------------------------------- serving


def health_ok(port: int, *, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _server_command(ctx: Context, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "--host",
        HOST,
        "--port",
        str(port),
        "--authenticate",
        "update",
        "--passwords",
        str(htpasswd_file(ctx)),
        "--disable-fallback",
        "--health-endpoint",
        "/health",
        "--log-stream",
        "stderr",
        str(packages_dir(ctx)),
    ]


def _port_book(ctx: Context) -> PortBook | None:
    """The runtime's port book, or None in a workspace without a foundation model (a stand-in)."""
    if not (ctx.root / "foundation").is_dir():
        return None
    try:
        return PortBook(ctx.state_dir, load_foundation(ctx.root, load_services(ctx.root)))
    except (FoundationError, DeclarationError) as exc:
        raise PackageIndexError(f"cannot allocate the index's port: {exc}") from exc


def _choose_port(ctx: Context) -> int:
    """CARAVAN_INDEX_PORT if set; else the port recorded at provisioning; else DEFAULT_PORT (the one
    services' pyprojects name) when free; else one the runtime allocates from the foundation's
    operations tier (a free loopback port in a workspace without one). Recorded in the runtime's
    port book, so the network-plan gate knows the index's listener."""
    book = _port_book(ctx)
    allocated = book.allocated().get(PROGRAM) if book is not None else None
    port = _configured_port() or _recorded_port(ctx) or allocated
    if port is None:
        in_range = book is None or _in_tier(book, DEFAULT_PORT)
        if in_range and not port_in_use(DEFAULT_PORT):
            port = DEFAULT_PORT
        elif book is not None:
            try:
                port = book.port_for(PROGRAM, PROGRAM)
            except PortCollision as exc:
                raise PackageIndexError(str(exc)) from exc
        else:
            port = free_port()
    if book is not None:
        book.assign(PROGRAM, port)
    return port


def _in_tier(book: PortBook, port: int) -> bool:
    try:
        low, high = book.tier_range(PROGRAM)
    except KeyError:
        return False
    return bool(low <= port <= high)


@dataclass(frozen=True)
class IndexState:
    changed: bool
    url: str
    detail: str


def ensure_index(ctx: Context, *, timeout: float = 30.0) -> IndexState:
    """Provision credentials, start supervisord and pypiserver under it; idempotent."""
    changed = provision_credentials(ctx)
    packages_dir(ctx).mkdir(parents=True, exist_ok=True)
    sv = Supervisor(ctx.state_dir)
    changed = sv.ensure_running() or changed
    port = _choose_port(ctx)
    command = _server_command(ctx, port)
    current = sv.program(PROGRAM)
    ours_running = current is not None and current.state in ("RUNNING", "STARTING", "BACKOFF")
    conf_same = sv.program_conf(PROGRAM).exists() and str(port) in sv.program_conf(PROGRAM).read_text()
    if not (ours_running and conf_same) and port_in_use(port):
        raise PackageIndexError(
            f"port {port} on {HOST} is taken by another process: stop it or set {PORT_ENV} to a free port"
        )
    ctx.progress(f"package index on {HOST}:{port}")
    result = sv.add_program(
        PROGRAM,
        command,
        env={"PYTHONUNBUFFERED": "1"},
        directory=_dir(ctx),
        stopsignal="TERM",
        stopwaitsecs=5,
        startsecs=1,
    )
    changed = changed or result.any
    after = sv.program(PROGRAM)
    if after is not None and after.state in ("FATAL", "STOPPED", "EXITED"):
        # gave up earlier (e.g. its port was taken then) or was stopped: start it again
        ctx.progress(f"restarting the package index (was {after.state})")
        sv.start(PROGRAM)
        changed = True
    _record_file(ctx).write_text(json.dumps({"port": port, "url": default_index_url(port)}) + "\n")
    deadline = time.monotonic() + timeout
    while not health_ok(port):
        status = sv.program(PROGRAM)
        if status is not None and status.state in ("FATAL", "BACKOFF", "EXITED"):
            raise PackageIndexError(
                f"the package index did not start ({status.state}): see {status.log_file}"
            )
        if time.monotonic() > deadline:
            raise PackageIndexError(
                f"the package index did not answer on {HOST}:{port} within {timeout:.0f}s"
            )
        time.sleep(0.1)
    url = default_index_url(port)
    return IndexState(changed=changed, url=url, detail=f"{url} (pypiserver, authenticated upload)")


# ---------------------------------------------------------------------------- reading the index


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self.files.append(href.split("#", 1)[0].rsplit("/", 1)[-1])


def listed_files(simple_url: str, project: str, *, timeout: float = 10.0) -> list[str]:
    """File names the index lists for a project (empty when it does not know the project)."""
    url = f"{simple_url.rstrip('/')}/{canonicalize_name(project)}/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            page = resp.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise PackageIndexError(f"the package index answered {exc.code} for {url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PackageIndexError(f"the package index at {simple_url} is not reachable ({exc})") from exc
    parser = _Links()
    parser.feed(page)
    return [f for f in parser.files if f]


def file_version(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def published_versions(simple_url: str, project: str) -> set[str]:
    versions = {file_version(f) for f in listed_files(simple_url, project)}
    return {v for v in versions if v is not None}
