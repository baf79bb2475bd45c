"""schemathesis against the gateway's routes (its merged OpenAPI document: every service's
operations under /api/<service>), all checks on, 100 examples per operation, as an operator.
Each service's own document is fuzzed directly by that service's suite (tests/e2e)."""

from __future__ import annotations

from pathlib import Path

from system import System

from caravan_commons.testing import fuzz_openapi


def test_every_route_through_the_gateway_holds_to_its_document(system: System, tmp_path: Path) -> None:
    report = fuzz_openapi(
        system.gateway_url, tmp_path, max_examples=100, headers={"X-API-Key": system.keys["workspace"]}
    )
    assert report.clean, report.output[-6000:]
    assert report.operations() >= 20
