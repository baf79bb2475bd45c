"""Runbooks: ``observability/runbooks/<alert>.md``, one per alert, each with the same sections.

:func:`check` lists what is wrong: an alert without a runbook, a runbook of no alert, a missing
section, or an ``invoke`` command naming a task or a flag the CLI does not have (the commands a
runbook gives are run by someone under pressure: they must work).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from caravan_workspace.ops.rules import RUNBOOKS_DIR, alerts

SECTIONS = ("Meaning", "Impact", "Diagnose", "Mitigate", "Escalate")
#: Flags every invoke task takes (invoke's own).
CORE_FLAGS = frozenset({"-h", "--help"})
_CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.S)
_INVOKE = re.compile(r"(?:^|[\s;&|(])invoke\s+([^\n;&|)]*)")


@functools.cache
def cli_flags(root: Path) -> dict[str, set[str]]:
    """Task name (as typed, e.g. ``commons.release``) → the flags it takes, from the root tasks.py."""
    spec = importlib.util.spec_from_file_location("_caravan_tasks", root / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    collection = module.ns
    flags: dict[str, set[str]] = {}
    for name in collection.task_names:
        task = collection[name]
        names: set[str] = set(CORE_FLAGS)
        for argument in task.get_arguments():
            for n in argument.names:
                names.add(("-" if len(n) == 1 else "--") + n.replace("_", "-"))
                if argument.kind is bool and len(n) > 1:
                    names.add("--no-" + n.replace("_", "-"))
        for alias in (name, *collection.task_names[name]):
            flags[alias] = names
    return flags


def invoke_commands(text: str) -> list[list[str]]:
    """Every ``invoke …`` command in the code spans and blocks of a Markdown text, as words."""
    commands = []
    for match in _CODE.finditer(text):
        code = match.group(1) or match.group(2) or ""
        for line in code.splitlines():
            for command in _INVOKE.finditer(line):
                try:
                    words = shlex.split(command.group(1), comments=True)
                except ValueError:
                    words = command.group(1).split()
                if words:
                    commands.append(words)
    return commands


def command_problems(words: list[str], flags: Mapping[str, set[str]]) -> list[str]:
    task, rest = words[0], words[1:]
    shown = " ".join(["invoke", *words])
    if task not in flags:
        return [f"`{shown}`: no invoke task {task!r}"]
    wrong = [w.split("=", 1)[0] for w in rest if w.startswith("-") and w.split("=", 1)[0] not in flags[task]]
    return [f"`{shown}`: invoke {task} has no flag {w}" for w in wrong]


def check(root: Path) -> list[str]:
    folder = root / RUNBOOKS_DIR
    names = set(alerts(root))
    books = {p.stem: p for p in folder.glob("*.md")}
    found = [
        f"alert {n} has no runbook ({RUNBOOKS_DIR.as_posix()}/{n}.md)" for n in sorted(names - set(books))
    ]
    found += [
        f"runbook {RUNBOOKS_DIR.as_posix()}/{n}.md belongs to no alert" for n in sorted(set(books) - names)
    ]
    flags = cli_flags(root)
    for path in sorted(books.values()):
        text = path.read_text(encoding="utf-8")
        headings = set(re.findall(r"^##\s+(.+?)\s*$", text, re.M))
        found += [f"{path.name}: no '## {s}' section" for s in SECTIONS if s not in headings]
        for words in invoke_commands(text):
            found += [f"{path.name}: {problem}" for problem in command_problems(words, flags)]
    return found
