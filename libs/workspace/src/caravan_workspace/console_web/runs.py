"""Stage runs started from the console: `invoke stage N` as a child process (the CLI itself, so a
run from the page is the run from the terminal), one at a time, its output written to
``<state>/console/runs/<id>.log`` and streamed to the page over server-sent events."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

MODES = {"deps": [], "with-deps": ["--with-deps"], "gates-only": ["--gates-only"]}


class RunRefused(Exception):
    """A run cannot start (another is going, or the request is not valid)."""


@dataclass
class StageRun:
    id: str
    stage: int
    mode: str
    command: list[str]
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.returncode is not None

    @property
    def title(self) -> str:
        return "invoke stage " + " ".join(self.command[self.command.index("stage") + 1 :])


class Runs:
    """The console's stage runs; only one at a time (the engine itself takes no lock)."""

    def __init__(self, root: Path, state_dir: Path, keep: int = 20) -> None:
        self.root = root
        self.state_dir = state_dir
        self._runs: dict[str, StageRun] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def active(self) -> StageRun | None:
        with self._lock:
            return next((r for r in self._runs.values() if not r.done), None)

    def get(self, run_id: str) -> StageRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def start(self, stage: int, mode: str) -> StageRun:
        if mode not in MODES:
            raise RunRefused(f"unknown mode {mode!r}: use {', '.join(MODES)}")
        command = [sys.executable, "-m", "invoke", "stage", str(stage), *MODES[mode]]
        with self._lock:
            going = next((r for r in self._runs.values() if not r.done), None)
            if going is not None:
                raise RunRefused(f"{going.title} is still running: wait for it to finish")
            run = StageRun(uuid.uuid4().hex[:12], stage, mode, command)
            self._runs[run.id] = run
            while len(self._runs) > self._keep:
                gone = self._runs.pop(next(iter(self._runs)))
                (self.runs_dir / f"{gone.id}.log").unlink(missing_ok=True)
        env = {**os.environ, "CARAVAN_STATE_DIR": str(self.state_dir), "COLUMNS": "140", "NO_COLOR": "1"}
        output = self.runs_dir / f"{run.id}.log"
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as sink:
            # Its own session and a file for its output: stopping the console (Ctrl-C, a closed
            # pipe) never interrupts a stage half-way; the run finishes and records its result.
            process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        threading.Thread(target=self._pump, args=(run, process, output), daemon=True).start()
        return run

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "console" / "runs"

    @staticmethod
    def _pump(run: StageRun, process: subprocess.Popen[bytes], output: Path, poll: float = 0.1) -> None:
        """Follow the run's output file into ``run.lines`` until the run has ended."""
        with output.open("rb") as fh:
            partial = b""
            while True:
                ended = process.poll() is not None
                chunk = fh.read()
                if chunk:
                    *complete, partial = (partial + chunk).split(b"\n")
                    run.lines.extend(line.decode("utf-8", errors="replace") for line in complete)
                elif ended:
                    if partial:
                        run.lines.append(partial.decode("utf-8", errors="replace"))
                    run.returncode = process.returncode
                    return
                else:
                    time.sleep(poll)


async def follow(run: StageRun, *, poll: float = 0.2) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs: every output line of the run as it comes, then ``done`` with the
    exit status."""
    sent = 0
    while True:
        finished = run.done
        while sent < len(run.lines):
            yield "line", run.lines[sent]
            sent += 1
        if finished:
            yield "done", "passed" if run.returncode == 0 else f"failed (exit {run.returncode})"
            return
        await asyncio.sleep(poll)
