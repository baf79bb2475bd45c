"""create_app reads the caller's deadline header (X-Request-Timeout-Ms) into the request."""

from litestar import get
from litestar.testing import TestClient

from caravan_commons.app import create_app
from caravan_commons.settings import ServiceSettings


@get("/deadline", sync_to_thread=False)
def remaining() -> dict:
    from caravan_commons.deadline import current_deadline

    deadline = current_deadline()
    return {"remaining": None if deadline is None else deadline.remaining()}


def test_create_app_makes_the_callers_deadline_current():
    app = create_app(ServiceSettings(service_name="svc-a", trace_exporter="none"), route_handlers=[remaining])
    with TestClient(app) as client:
        assert client.get("/deadline").json() == {"remaining": None}
        left = client.get("/deadline", headers={"X-Request-Timeout-Ms": "5000"}).json()["remaining"]
        assert 0 < left <= 5.0
        bad = client.get("/deadline", headers={"X-Request-Timeout-Ms": "soon"})
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")
