"""The helpers services' own test suites build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from caravan_commons.identity import Verifier, generate_identities
from caravan_commons.testing import FuzzReport, RuntimeAccess


def test_runtime_access_names_every_missing_variable() -> None:
    with pytest.raises(RuntimeError, match=r"CARAVAN_GATEWAY_URL, .*CARAVAN_IDENTITY_DIR"):
        RuntimeAccess.from_env({"CARAVAN_DISCOVERY_BACKEND": "local"})


def test_runtime_access_reads_keys_and_signs_as_a_service(tmp_path: Path) -> None:
    generate_identities(["svc-b"], tmp_path)
    env = {"CARAVAN_GATEWAY_URL": "http://127.0.0.1:18000/", "CARAVAN_IDENTITY_DIR": str(tmp_path),
           "CARAVAN_DISCOVERY_BACKEND": "static"}  # fmt: skip
    for n, name in enumerate(("OPERATOR", "CUSTOMER", "OTHER_CUSTOMER")):
        (tmp_path / f"{name}.key-file").write_text(f"key-{n}\n")
        env[f"CARAVAN_GATEWAY_{name}_KEY_FILE"] = str(tmp_path / f"{name}.key-file")
    access = RuntimeAccess.from_env(env)
    assert access.api("svc-a", "/products") == "http://127.0.0.1:18000/api/svc-a/products"
    assert (access.operator_key, access.customer_key, access.other_customer_key) == (
        "key-0",
        "key-1",
        "key-2",
    )
    headers = access.signed_as("svc-b", "svc-a", "GET", "/products?limit=2")
    verifier = Verifier.from_file("svc-a", tmp_path / "public-keys.json")
    assert verifier.verify(next(iter(headers.values())), method="GET", path="/products").caller == "svc-b"


def test_fuzz_report_reads_the_summary() -> None:
    output = "API Operations:\n  Selected: 9/9\n  Tested: 9\n\n===== No issues found in 3.2s ====="
    assert FuzzReport(0, output).clean and FuzzReport(0, output).operations() == 9
    assert not FuzzReport(1, output).clean
    assert not FuzzReport(0, "nothing to test").clean
