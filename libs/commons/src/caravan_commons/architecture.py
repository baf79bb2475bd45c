"""The house rule for domains, as code: a service's ``domain`` package imports only the standard
library, commons' pure modules and itself. One implementation, used by each service's own
architecture test and by the workspace's stage gate (by AST; nothing is imported or run)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

#: commons modules a domain may import: pure Python, no framework, ORM or I/O.
PURE_COMMONS = frozenset({"caravan_commons.errors", "caravan_commons.money"})


def domain_violations(domain: Path, package: str) -> tuple[int, list[str]]:
    """(top-level definitions found, imports that break purity) over every module of ``domain``.

    ``package`` is the service's import package (``svc_a``); ``domain`` its ``domain`` folder.
    Imports inside functions count too; relative imports may not leave the domain.
    """
    problems: list[str] = []
    definitions = 0
    stdlib = sys.stdlib_module_names
    for path in sorted(domain.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(domain.parent.parent)
        definitions += sum(
            isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) for node in tree.body
        )
        depth = len(path.relative_to(domain).parts) - 1  # 0 for domain/model.py
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    if node.level - 1 > depth:
                        problems.append(f"{where}:{node.lineno} imports from outside the domain (relative)")
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                own = name == f"{package}.domain" or name.startswith(f"{package}.domain.")
                if top == "__future__" or top in stdlib or own or name in PURE_COMMONS:
                    continue
                problems.append(f"{where}:{node.lineno} imports {name}")
    return definitions, problems
