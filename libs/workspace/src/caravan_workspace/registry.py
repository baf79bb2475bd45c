"""The registry of gate probes and stage actions that plan.toml refers to by name.

A gate is a function ``(ctx, **args) -> str`` (``args`` from plan.toml) returning a one-line
detail when the condition holds and raising :class:`GateFailure` (with the reason and the
command that fixes it) when it does not.
An action is a function ``(ctx, **args) -> ActionResult`` that is idempotent: when there is nothing to do
it returns ``ActionResult(changed=False, ...)`` without redoing work.

Probes live in ``caravan_workspace.stages.<area>`` modules, which register themselves with the
``@gate`` / ``@action`` decorators when ``caravan_workspace.stages.load_all()`` imports them (the
registry knows nothing of them). A name that plan.toml uses but nobody registered is a gate that
is "not implemented yet" — it fails, it never passes.

A gate whose result depends only on files (a test suite, say) passes ``inputs=`` to ``@gate``: a
function ``(ctx, **args) -> Inputs`` naming what it reads. The engine then reuses the gate's last
pass while those inputs are unchanged (see :mod:`caravan_workspace.gate_cache`); a gate without
one probes every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from caravan_workspace import paths
from caravan_workspace.gate_cache import InputsFn


class GateFailure(Exception):
    """A gate's condition does not hold. ``fix`` is the command (or step) that makes it hold."""

    def __init__(self, reason: str, *, fix: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class ActionError(Exception):
    """A stage action could not do its work; the message is shown to the user as one line."""


@dataclass(frozen=True)
class ActionResult:
    changed: bool
    detail: str = ""


class Progress(Protocol):
    def __call__(self, message: str) -> None: ...


def _silent(message: str) -> None:
    return None


@dataclass(frozen=True)
class Context:
    """The workspace context — where the workspace is and how to report progress — that gates,
    actions, tasks and the runtimes are given."""

    root: Path
    state_dir: Path
    progress: Progress = field(default=_silent)

    @classmethod
    def at(cls, root: Path, progress: Progress = _silent) -> Context:
        """The context of the workspace at ``root``, with its state folder (CARAVAN_STATE_DIR or
        ``<root>/.caravan``)."""
        return cls(root=root, state_dir=paths.state_dir(root), progress=progress)

    def path(self, *parts: str) -> Path:
        """A path inside the state folder (created on demand for directories by the caller)."""
        return self.state_dir.joinpath(*parts)


Gate = Callable[..., str]
Action = Callable[..., ActionResult]

GATES: dict[str, Gate] = {}
#: The inputs function of each gate whose result is cached by its inputs.
GATE_INPUTS: dict[str, InputsFn] = {}
ACTIONS: dict[str, Action] = {}


def gate(name: str, *, inputs: InputsFn | None = None) -> Callable[[Gate], Gate]:
    """Register a gate probe; ``inputs`` (what its result depends on) makes its passes cacheable."""

    def register(fn: Gate) -> Gate:
        if name in GATES:
            raise RuntimeError(f"gate probe {name!r} registered twice")
        GATES[name] = fn
        if inputs is not None:
            GATE_INPUTS[name] = inputs
        return fn

    return register


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        if name in ACTIONS:
            raise RuntimeError(f"stage action {name!r} registered twice")
        ACTIONS[name] = fn
        return fn

    return register
