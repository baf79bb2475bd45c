"""Identities on the local runtime: a key pair for the gateway and every service (0600 private
keys in ``<state>/identity``), and the settings that give a program its own."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from caravan_commons.identity import PUBLIC_KEYS_FILE, generate_identities
from caravan_workspace.foundation import Foundation

IDENTITY_DIR = "identity"


class Identities:
    def __init__(self, state_dir: Path, foundation: Foundation, members: Iterable[str]) -> None:
        self.dir = state_dir / IDENTITY_DIR
        self.foundation = foundation
        self.members = list(members)

    def provision(self) -> list[str]:
        """A key pair for every member (0600 private keys); idempotent."""
        return generate_identities(self.members, self.dir)

    def known(self) -> set[str]:
        """Every program name that has a private key (the gateway and the services)."""
        return {p.stem for p in self.dir.glob("*.key")}

    def env(self, member: str) -> dict[str, str]:
        """A program's identity settings: its keys, everyone's public keys, and who may call it."""
        callers = self.foundation.callers_of(member)
        return {
            "CARAVAN_IDENTITY_NAME": member,
            "CARAVAN_IDENTITY_KEY_FILE": str(self.dir / f"{member}.key"),
            "CARAVAN_PUBLIC_KEYS_FILE": str(self.dir / PUBLIC_KEYS_FILE),
            "CARAVAN_SECRET_KEY_FILE": str(self.dir / f"{member}.secret"),
            "CARAVAN_ALLOWED_CALLERS": json.dumps(
                {k: list(v) if v else None for k, v in sorted(callers.items())}
            ),
        }
