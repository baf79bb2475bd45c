"""Gate probes and stage actions, one module per area; each registers itself (see registry)."""

import importlib
import pkgutil


def load_all() -> None:
    """Import every ``caravan_workspace.stages.*`` module so that its probes register."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
