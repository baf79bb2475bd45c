"""`invoke new-service NAME`: render a new service from the template in libs/commons/template."""

from __future__ import annotations

from invoke import Context, task
from invoke.exceptions import Exit

from caravan_workspace import paths
from caravan_workspace import template as templates

FAILED = 1


@task(
    name="new-service",
    positional=["name"],
    help={
        "name": "service name: lower-case words joined by '-', e.g. svc-d (also its folder)",
        "title": "human title for docs and the OpenAPI document (default: the name)",
        "lane": "plan lane for service.toml (default: the name)",
    },
)
def new_service(c: Context, name: str, title: str | None = None, lane: str | None = None) -> None:
    """Render a new service (house layout, commons from the workspace index) that passes its tests."""
    try:
        root = paths.find_root()
    except paths.WorkspaceNotFound as exc:
        raise Exit(f"error: {exc}", code=FAILED) from exc
    try:
        folder = templates.render_service(root, name, title=title, lane=lane)
    except templates.TemplateError as exc:
        raise Exit(f"error: {exc}", code=FAILED) from exc
    package = name.replace("-", "_")
    print(f"rendered {folder.relative_to(root)}/ (package {package}, routes /api/{name})")
    print("next:")
    print(f"  - add {name} to a tier and its flows in foundation/ (the foundation model must know it)")
    print(f"  - add {package} to known-first-party in the root pyproject.toml (ruff)")
    print(f"  - test it: nox -s {package} (against the lowest and highest commons from the workspace index)")
