"""Program logs as `invoke logs` reads them (the supervisor's log file per program): JSON lines
for the services and the gateway (commons' format), JSON for Prometheus and Alertmanager, text
for the rest; filtered by level, text and trace id."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.runtime.supervisor import Supervisor

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_RANK = {name: i for i, name in enumerate(LEVELS)} | {"WARN": 4, "FATAL": 6}
TAIL_BYTES = 1 << 20  # a page shows the matching lines among the log's last megabyte
CHUNK = 64 << 10
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_PROGRAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LogQueryError(ValueError):
    """A filter that cannot be applied (the message says which and why)."""


@dataclass(frozen=True)
class LogFilter:
    level: str = ""  # the lowest level shown ("" = all)
    text: str = ""
    trace_id: str = ""

    @classmethod
    def parse(cls, level: str | None, text: str | None, trace_id: str | None) -> LogFilter:
        level = (level or "").strip().upper()
        if level and level not in _RANK:
            raise LogQueryError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
        trace_id = (trace_id or "").strip().lower()
        if trace_id and not _TRACE_ID.match(trace_id):
            raise LogQueryError(f"{trace_id!r} is not a trace id (32 hexadecimal digits)")
        return cls(level, (text or "").strip()[:200], trace_id)

    def may_keep(self, raw: bytes) -> bool:
        """A cheap test on the raw line before it is parsed (trace id and text are in it)."""
        if self.trace_id and self.trace_id.encode() not in raw:
            return False
        return not self.text or self.text.lower().encode() in raw.lower()

    def keeps(self, line: LogLine) -> bool:
        if self.level and _RANK.get(line.level, 2) < _RANK[self.level]:
            return False
        if self.trace_id and line.trace_id != self.trace_id and self.trace_id not in line.raw:
            return False
        return not self.text or self.text.lower() in line.raw.lower()


@dataclass(frozen=True)
class LogLine:
    raw: str
    time: str
    level: str
    message: str
    trace_id: str
    extra: dict[str, object]


def parse_line(raw: str) -> LogLine:
    raw = raw.rstrip("\n")
    if raw.startswith("{"):
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            message = str(doc.pop("message", doc.pop("msg", "")))
            return LogLine(
                raw=raw,
                time=str(doc.pop("time", doc.pop("ts", ""))),
                level=str(doc.pop("level", "")).upper(),
                message=message,
                trace_id=str(doc.pop("trace_id", None) or ""),
                extra={k: v for k, v in doc.items() if v is not None},
            )
    return LogLine(raw=raw, time="", level="", message=raw, trace_id="", extra={})


def log_path(state_dir: Path, program: str) -> Path | None:
    """The program's log file, or None when the name is not a program's (or it has no log)."""
    if not _PROGRAM.match(program):
        return None
    path = Supervisor(state_dir).log_path(program)
    return path if path.is_file() else None


def log_programs(state_dir: Path) -> list[str]:
    return sorted(p.stem for p in Supervisor(state_dir).logs_dir.glob("*.log"))


def read_tail(path: Path, wanted: LogFilter, limit: int = 200) -> tuple[list[LogLine], int]:
    """The last ``limit`` lines that pass the filter (reading backwards, at most the log's last
    megabyte), and the file's size (where a live tail goes on from)."""
    kept: list[LogLine] = []
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        position, carry = size, b""
        while position > 0 and len(kept) < limit and size - position < TAIL_BYTES:
            step = min(CHUNK, position)
            position -= step
            fh.seek(position)
            block = fh.read(step) + carry
            lines = block.split(b"\n")
            carry = lines.pop(0) if position > 0 else b""  # maybe cut: joined with the next block
            for raw in reversed(lines):
                if raw and wanted.may_keep(raw):
                    line = parse_line(raw.decode("utf-8", errors="replace"))
                    if wanted.keeps(line):
                        kept.append(line)
                        if len(kept) == limit:
                            break
    kept.reverse()
    return kept, size


def read_from(path: Path, offset: int, wanted: LogFilter) -> tuple[list[LogLine], int]:
    """Complete lines written after ``offset`` that pass the filter, and the new offset (a file
    that shrank — rotated or truncated — is read from its start)."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < offset:
            offset = 0
        fh.seek(offset)
        data = fh.read(min(size - offset, TAIL_BYTES))
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    return [line for line in map(parse_line, text.splitlines()) if wanted.keeps(line)], offset + end


def trace_ids(lines: Iterable[LogLine]) -> set[str]:
    return {line.trace_id for line in lines if line.trace_id}
