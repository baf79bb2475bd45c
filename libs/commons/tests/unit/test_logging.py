"""JSON-lines logging: fields, request ids, trace ids; the library itself adds no sinks."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgspec
import pytest
from litestar import get
from litestar.testing import TestClient
from loguru import logger

from caravan_commons.app import create_app
from caravan_commons.logging import configure_logging
from caravan_commons.settings import ServiceSettings


@get("/work")
async def work() -> str:
    logger.bind(order_id="o-7").info("working on {}", "it")
    return "ok"


@pytest.fixture
def lines(settings: ServiceSettings) -> Any:
    captured: list[str] = []
    handler = configure_logging(settings, sink=captured.append)
    yield captured
    logger.remove(handler)


def records(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def test_a_record_logged_in_a_request_has_all_fields(settings: ServiceSettings, lines: list[str]) -> None:
    app = create_app(settings, route_handlers=[work])
    with TestClient(app) as client:
        answer = client.get("/work", headers={"x-request-id": "req-42"})
    assert answer.headers["x-request-id"] == "req-42"
    entry = next(r for r in records(lines) if r["message"] == "working on it")
    assert entry["service"] == "unit-svc"
    assert entry["version"] == "1.2.3"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "req-42"
    assert entry["order_id"] == "o-7"
    (span,) = [s for s in app.state.tracing.memory.get_finished_spans() if s.name == "GET /work"]
    assert entry["trace_id"] == format(span.context.trace_id, "032x")
    assert entry["span_id"] == format(span.context.span_id, "016x")
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


def test_the_access_log_writes_one_line_per_request_in_its_span(
    settings: ServiceSettings, lines: list[str]
) -> None:
    quiet = create_app(settings, route_handlers=[work])
    with TestClient(quiet) as client:
        client.get("/work")
    assert not [r for r in records(lines) if r["message"].startswith("GET /work")]
    app = create_app(msgspec.structs.replace(settings, access_log=True), route_handlers=[work])
    with TestClient(app) as client:
        client.get("/work", headers={"x-request-id": "req-43"})
    (entry,) = [r for r in records(lines) if r["message"] == "GET /work 200"]
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/work", 200)
    assert entry["request_id"] == "req-43" and entry["duration_ms"] >= 0
    (span,) = [s for s in app.state.tracing.memory.get_finished_spans() if s.name == "GET /work"]
    assert entry["trace_id"] == format(span.context.trace_id, "032x")


def test_request_ids_are_generated_when_absent_or_unsafe(settings: ServiceSettings) -> None:
    with TestClient(create_app(settings, route_handlers=[work])) as client:
        generated = client.get("/work").headers["x-request-id"]
        injected = client.get("/work", headers={"x-request-id": "bad id\twith spaces"}).headers[
            "x-request-id"
        ]
        too_long = client.get("/work", headers={"x-request-id": "a" * 200}).headers["x-request-id"]
    for rid in (generated, injected, too_long):
        assert len(rid) == 32 and int(rid, 16) >= 0


def test_outside_a_request_ids_are_null(settings: ServiceSettings, lines: list[str]) -> None:
    logger.warning("no request here")
    (entry,) = records(lines)
    assert entry["request_id"] is None and entry["trace_id"] is None and entry["level"] == "WARNING"


def test_exceptions_are_logged_with_their_stack(settings: ServiceSettings, lines: list[str]) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed")
    (entry,) = records(lines)
    assert "ValueError: bad" in entry["exception"]


def test_log_file_gets_json_lines(tmp_path: Any) -> None:
    from caravan_commons.settings import load_settings

    path = tmp_path / "svc.log"
    settings = load_settings(
        ServiceSettings, {"CARAVAN_SERVICE_NAME": "filesvc", "CARAVAN_LOG_FILE": str(path)}
    )
    handler = configure_logging(settings)
    try:
        logger.info("to the file")
        import logging

        logging.getLogger("some.stdlib.lib").warning("from stdlib")
    finally:
        logger.remove(handler)
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["message"] for e in entries] == ["to the file", "from stdlib"]
    assert entries[1]["level"] == "WARNING"


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_standard_library_records_below_the_level_are_not_even_made(level: str) -> None:
    import logging

    from caravan_commons.settings import load_settings

    settings = load_settings(ServiceSettings, {"CARAVAN_SERVICE_NAME": "lvl", "CARAVAN_LOG_LEVEL": level})
    seen: list[str] = []
    handler = configure_logging(settings, sink=seen.append)
    made: list[str] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record.msg)
        return record

    logging.setLogRecordFactory(counting)
    try:
        logging.getLogger("aiosqlite").debug("executing %s", "a statement")
        logging.getLogger("aiosqlite").info("opened")
    finally:
        logging.setLogRecordFactory(factory)
        logger.remove(handler)
    expected = ["executing %s", "opened"] if level == "DEBUG" else ["opened"]
    assert made == expected
    assert len(seen) == len(expected)


def test_importing_the_library_adds_no_sink_and_stays_silent() -> None:
    code = (
        "from loguru import logger\n"
        "before = len(logger._core.handlers)\n"
        "import caravan_commons, caravan_commons.app, caravan_commons.server, caravan_commons.problems\n"
        "assert len(logger._core.handlers) == before, 'a sink was added'\n"
        "from caravan_commons.problems import _from_unexpected\n"
        "_from_unexpected(RuntimeError('x'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "unhandled" not in result.stderr  # caravan_commons is disabled until configure_logging
