"""schemathesis against svc-a as a real process on a migrated SQLite database: every check, 100
examples per operation, 0 failures — every answer is documented, every bad input is a 4xx
problem, never a 500. The demo catalogue is loaded first (as the stage does), so that requests
naming its skus (the schemas' examples) reach the success paths too."""

from __future__ import annotations

from pathlib import Path

from caravan_commons.testing import fuzz_openapi, run_module, served

#: health (2), info, products (4), stock (2), reservations (4)
OPERATIONS = 13

#: One narrow allowance: POST /reservations answers 422 to a schema-valid request when its
#: Idempotency-Key was already used with another body (the fuzzer reuses short keys such as "0"
#: across bodies). That answer is documented; schemathesis cannot know the key's history. Every
#: other operation and check keeps schemathesis' defaults.
SCHEMATHESIS_TOML = """
[[operations]]
include-path = "/reservations"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    env = {"CARAVAN_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    migrated = run_module("svc_a.infrastructure.db.migrate", tmp_path, env)
    assert migrated.returncode == 0, migrated.stderr
    demo = run_module("svc_a.demo", tmp_path, env)  # as the stage does: reservations can succeed
    assert demo.returncode == 0, demo.stderr
    (tmp_path / "schemathesis.toml").write_text(SCHEMATHESIS_TOML)
    with served("svc_a", tmp_path, env) as service:
        report = fuzz_openapi(
            f"http://127.0.0.1:{service.port}",
            tmp_path,
            max_examples=100,
            headers={"X-Caravan-Scopes": "operator", "X-Caravan-Customer": "fuzz"},
        )
    assert "schemathesis.toml" in report.output  # the allowance above was read
    assert report.clean, report.output[-6000:]
    assert report.operations() == OPERATIONS, report.output[-2000:]
