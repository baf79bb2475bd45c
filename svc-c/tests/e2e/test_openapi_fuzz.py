"""schemathesis against svc-c as a real process: every operation of its OpenAPI document, every
check, 100 examples per operation, 0 failures."""

from __future__ import annotations

from pathlib import Path

from caravan_commons.testing import fuzz_openapi, run_module, served

#: health/live, health/ready, info, authorize, get payment, capture, void, refund, ledger balances
OPERATIONS = 9

HOOKS = "caravan_commons.schemathesis_hooks"  # a fresh Idempotency-Key per valid request

#: Documented exceptions, for the four money movements only (POST /payments/...):
#: - schema-valid data may be refused with a 422 (positive_data_acceptance): following ids it
#:   learnt, schemathesis captures or refunds a payment in another currency than the payment's
#:   (payment-currency-mismatch) and authorises with made-up card tokens (unknown-card-token) —
#:   neither is something the schema can say. The check's defaults already allow 404 and 409.
#: - for the same reason most of their schema-valid cases are refused, so schemathesis' hints
#:   "validation mismatch" and "missing test data" (warnings, not failures) are not shown for them;
#:   the paths past those refusals are tested in-process (tests/integration/api).
POSITIVE_OK = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
HINTS_SHOWN = [
    "missing_auth",
    "base_url_mismatch",
    "missing_deserializer",
    "unused_openapi_auth",
    "unsupported_regex",
    "method_not_allowed",
    "unmatched_filter",
    "unresolvable_reference",
    "rate_limited",
]
SCHEMATHESIS_TOML = f"""
hooks = "{HOOKS}"

[[operations]]
include-method = "POST"
include-path-regex = "^/payments/"
checks.positive_data_acceptance.expected-statuses = {POSITIVE_OK!r}
warnings.display = {HINTS_SHOWN!r}
"""


def test_the_api_survives_schemathesis(tmp_path: Path) -> None:
    env = {"CARAVAN_DATABASE_URL": f"sqlite:///{tmp_path}/svc-c.sqlite3"}
    migrated = run_module("svc_c.infrastructure.db.migrate", tmp_path, env)
    assert migrated.returncode == 0, migrated.stderr
    (tmp_path / "schemathesis.toml").write_text(SCHEMATHESIS_TOML)
    # the slow test token answers quickly here; its deadline behaviour is tested in-process
    with served("svc_c", tmp_path, {**env, "CARAVAN_PROCESSOR_SLOW_DELAY_S": "0.01"}) as service:
        report = fuzz_openapi(
            f"http://127.0.0.1:{service.port}",
            tmp_path,
            max_examples=100,
            headers={"X-Caravan-Scopes": "operator", "X-Caravan-Customer": "fuzz"},
        )
    print(report.output[-1200:])  # the summary (phases, cases) shows with pytest -s
    assert report.clean, report.output[-6000:]
    assert report.operations() == OPERATIONS, report.output[-3000:]
