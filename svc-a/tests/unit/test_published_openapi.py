"""svc-a publishes its OpenAPI document (``svc-a/openapi.json``) for consumers' contract tests
(caravan_commons.contracts); it must stay equal to what the app serves. Regenerate with
``python -c "from svc_a.bootstrap import build_app; from svc_a.config import Settings;
from caravan_commons.contracts import write_openapi; from pathlib import Path;
write_openapi(build_app(Settings(trace_exporter='none')), Path('openapi.json'))"`` in svc-a/."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc_a.bootstrap import build_app
from svc_a.config import Settings

PUBLISHED = Path(__file__).parents[2] / "openapi.json"


def test_the_published_document_is_what_the_app_serves(tmp_path: Path) -> None:
    contracts = pytest.importorskip(
        "caravan_commons.contracts", reason="this caravan-commons has no contracts module (before 0.2.0's)"
    )
    app = build_app(Settings(trace_exporter="none", database_url=f"sqlite:///{tmp_path}/db.sqlite3"))
    assert contracts.published_openapi_problems(app, PUBLISHED) == []
