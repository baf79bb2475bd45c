"""`invoke deploy --target T`: each target is a module of this package with the same four
functions — ``deploy(ctx)``, ``status(ctx)``, ``down(ctx, purge=False)``, ``logs(ctx, name)`` —
so a target is added by adding its module and a line to :data:`TARGETS`."""

from __future__ import annotations

import importlib
from types import ModuleType

TARGETS: dict[str, str] = {"docker": "caravan_workspace.deploy.docker"}


class DeployError(Exception):
    """A deployment could not be done; the message is one line, ``fix`` says what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def target_module(target: str) -> ModuleType:
    if target not in TARGETS:
        known = ", ".join(["local", *sorted(TARGETS)])
        raise DeployError(f"unknown target {target!r} (known: {known})")
    return importlib.import_module(TARGETS[target])
