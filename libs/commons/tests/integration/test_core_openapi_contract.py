"""schemathesis against a real create_app service: every status code and content type the
service answers with is documented (no ST103/ST105), bodies match their schemas."""

from __future__ import annotations

from pathlib import Path

from test_core_server import start

from caravan_commons.testing import fuzz_openapi


def test_schemathesis_finds_nothing_undocumented(tmp_path: Path) -> None:
    service = start(tmp_path)
    try:
        report = fuzz_openapi(service.base, tmp_path, max_examples=40)
    finally:
        service.stop()
    assert report.clean, report.output[-4000:]
    assert report.operations() >= 3


def test_negative_control_without_commons_documentation_fails(tmp_path: Path) -> None:
    service = start(tmp_path, probe="/schema/openapi.json", CORE_SERVICE_UNDOCUMENTED="1")
    try:
        report = fuzz_openapi(service.base, tmp_path, max_examples=40)
    finally:
        service.stop()
    assert not report.clean
    assert "Undocumented Content-Type" in report.output or "Undocumented HTTP status code" in report.output
