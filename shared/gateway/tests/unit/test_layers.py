"""The gateway's modules in layers: each imports only modules of the layers listed before it (every
import counts, TYPE_CHECKING and function-local ones too; read by AST), so there is no import
circle. The request path: a connection hands each exchange to the gateway (a ``Dispatcher`` to it),
an exchange sees its connection as a ``Caller``, and the admin gets only what it reads."""

import ast
from pathlib import Path

import caravan_gateway

SOURCE = Path(caravan_gateway.__file__).parent
LAYERS = [
    "__init__", "headers", "settings", "routes", "limits", "problems", "auth", "tracing",
    "upstream", "exchange", "connection", "admin", "gateway", "server", "__main__",
]  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    """The gateway's modules that ``path`` imports, by their short names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith("caravan_gateway.") and n.count(".") == 1)
    return found & set(LAYERS)


def test_every_module_has_its_layer():
    assert sorted(p.stem for p in SOURCE.glob("*.py")) == sorted(LAYERS)


def test_each_module_imports_only_the_layers_below_it():
    for path in SOURCE.glob("*.py"):
        below = set(LAYERS[: LAYERS.index(path.stem)])
        assert imported_modules(path) <= below, f"{path.name} imports {imported_modules(path) - below}"


def test_the_imports_are_read():
    assert {"admin", "connection", "gateway"} <= imported_modules(SOURCE / "server.py")
    assert imported_modules(SOURCE / "exchange.py") == {"headers", "upstream"}
