"""The console app on Litestar's test client, over a state folder written in the formats the
runtime writes (state file, supervisor logs, span files, the console's token) — no system runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import ORDER, TRACE, log, span
from litestar.testing import TestClient

from caravan_workspace.console_web.app import create_app
from caravan_workspace.console_web.settings import ConsoleSettings, ensure_token
from caravan_workspace.state import GateRecord, StateStore


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    store = StateStore(state)
    with store.updating(1) as record:
        record.status = "passed"
        record.gates["network"] = GateRecord(
            "network plan valid and applied", True, "3 tiers", "2026-12-07T10:00:00+00:00", 0.5
        )
    with store.updating(2) as record:
        record.status = "failed"
        record.reason = "1 gate failed"
        record.gates["gateway"] = GateRecord(
            "API gateway routing works",
            False,
            "no route answers",
            "2026-12-07T10:01:00+00:00",
            1.2,
            fix="invoke stage 2",
        )
    logs = state / "supervisor" / "logs"
    logs.mkdir(parents=True)
    (logs / "svc-b-1.log").write_text(
        "\n".join(
            [
                log("INFO", "serving svc-b"),
                log("INFO", f"order {ORDER} placed", TRACE),
                log("ERROR", "payment declined", "0" * 32),
                "a plain text line",
            ]
        )
        + "\n"
    )
    traces = state / "traces"
    traces.mkdir()
    (traces / "gateway-1.jsonl").write_text(
        span("g1", None, "gateway", "POST /api/svc-b/orders", 0, 10_000_000) + "\n"
    )
    (traces / "svc-b-1.jsonl").write_text(
        span("b1", "g1", "svc-b", "POST /orders", 1_000_000, 9_000_000, **{"url.path": "/orders"})
        + "\n"
        + span(
            "b2",
            "b1",
            "svc-b",
            "POST svc-a",
            2_000_000,
            3_000_000,
            **{"url.path": f"/reservations/{ORDER}/commit"},
        )
        + "\n{torn"
    )
    return state


@pytest.fixture
def settings(repo_root: Path, state_dir: Path) -> ConsoleSettings:
    return ConsoleSettings(root=repo_root, state_dir=state_dir, token=ensure_token(state_dir), port=0)


@pytest.fixture
def anonymous(settings: ConsoleSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient, settings: ConsoleSettings) -> TestClient:
    """Logged in (the session cookie) with the CSRF cookie set, as a browser would be."""
    answer = anonymous.get(f"/login?token={settings.token}", follow_redirects=False)
    assert answer.status_code in (302, 303), answer.text
    anonymous.headers["accept"] = "text/html"
    return anonymous
