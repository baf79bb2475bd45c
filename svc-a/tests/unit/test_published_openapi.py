"""svc-a publishes its OpenAPI document (``svc-a/openapi.json``) for its consumers' contract tests
(svc-b's clients); it must stay equal to what the app serves. Regenerate it, in svc-a/ with the
service's virtualenv: ``python -m caravan_commons.contracts svc_a.bootstrap:build_app
svc_a.config:Settings openapi.json``."""

from __future__ import annotations

from pathlib import Path

from caravan_commons.contracts import published_openapi_problems
from svc_a.bootstrap import build_app
from svc_a.config import Settings

PUBLISHED = Path(__file__).parents[2] / "openapi.json"


def test_the_published_document_is_what_the_app_serves(tmp_path: Path) -> None:
    app = build_app(Settings(trace_exporter="none", database_url=f"sqlite:///{tmp_path}/db.sqlite3"))
    assert published_openapi_problems(app, PUBLISHED) == []
