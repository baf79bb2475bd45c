"""What the console serves and where it listens: read once at start-up and passed in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.runtime.ports import PortBook
from caravan_workspace.state import write_atomic

LOOPBACK = "127.0.0.1"
#: The console's port is allocated (once, then kept) from the operations tier, like the index's.
PORT_MEMBER = "monitoring"
PROGRAM = "console"


@dataclass(frozen=True)
class ConsoleSettings:
    root: Path  # the workspace (plan.toml, service declarations, observability/)
    state_dir: Path  # the state folder the CLI uses
    token: str  # the login token (`invoke console` prints it)
    host: str = LOOPBACK
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def login_url(self) -> str:
        return f"{self.url}/login?token={self.token}"


def token_path(state_dir: Path) -> Path:
    return state_dir / "console" / "token"


def ensure_token(state_dir: Path) -> str:
    """The console's login token: generated once into a 0600 file in the state folder."""
    path = token_path(state_dir)
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, (token + "\n").encode(), mode=0o600)
    return token


def console_port(book: PortBook) -> int:
    """The console's port, allocated from the operations tier's range and kept across runs."""
    return book.port_for(PROGRAM, PORT_MEMBER)
