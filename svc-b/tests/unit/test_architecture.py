"""The domain imports nothing but the standard library, itself and commons' pure types."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import svc_b

DOMAIN = Path(svc_b.__file__).parent / "domain"
ALLOWED = {"svc_b", "caravan_commons"} | set(sys.stdlib_module_names)
PURE_COMMONS = {"caravan_commons.errors", "caravan_commons.money"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_domain_has_modules() -> None:
    assert (DOMAIN / "model.py").is_file()


def test_domain_imports_only_the_standard_library_and_pure_commons_types() -> None:
    offenders = []
    for path in sorted(DOMAIN.rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            own = module == "svc_b.domain" or module.startswith("svc_b.domain.")
            if (
                (top == "svc_b" and not own)
                or top not in ALLOWED
                or (top == "caravan_commons" and module not in PURE_COMMONS)
            ):
                offenders.append(f"{path.name}: {module}")
    assert offenders == []
