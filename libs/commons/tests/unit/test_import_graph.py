"""caravan_commons' modules import one another without a circle. Every import counts — at the top,
under TYPE_CHECKING or inside a function — read from the source by AST (nothing is imported), and
graphlib names the circle if there is one."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import caravan_commons

ROOT = Path(caravan_commons.__file__).parent
PACKAGE = "caravan_commons"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the package's modules it imports (a package's own ``__init__`` left out)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{name} uses a relative import"
                targets.add(node.module)  # `from pkg import module` names a module too:
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t not in (name, PACKAGE)}
    return graph


def test_the_graph_is_read():
    graph = import_graph()
    assert "caravan_commons.identity_keys" in graph["caravan_commons.identity"]
    assert "caravan_commons.problem_documents" in graph["caravan_commons.identity"]
    assert "caravan_commons.errors" in graph["caravan_commons.problems"]


def test_caravan_commons_has_no_import_circle():
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        pytest.fail(f"import circle: {' → '.join(exc.args[1])}")


def test_a_circle_would_be_found():
    graph = import_graph()
    graph["caravan_commons.errors"] = graph["caravan_commons.errors"] | {"caravan_commons.problems"}
    with pytest.raises(CycleError):
        TopologicalSorter(graph).prepare()
