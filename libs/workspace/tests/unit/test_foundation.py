"""The foundation model: the real file loads; broken models are refused naming the line."""

import re

import pytest

from caravan_workspace.foundation import FoundationError, load_foundation, parse_foundation
from caravan_workspace.services import load_services


@pytest.fixture
def services(repo_root):
    return load_services(repo_root)


@pytest.fixture
def text(repo_root):
    return (repo_root / "foundation" / "foundation.toml").read_text()


def test_the_real_model_loads_and_allows_exactly_the_designed_flows(repo_root, services):
    model = load_foundation(repo_root, services)
    assert model.host == "127.0.0.1"
    assert model.allows("client", "gateway")
    for svc in ("svc-a", "svc-b", "svc-c"):
        assert model.allows("monitoring", svc, "/metrics")
        assert not model.allows("monitoring", svc, "/products")
        assert model.allows(svc, f"{svc}-db")
    assert model.allows("svc-b", "svc-a") and model.allows("svc-b", "svc-c")
    assert not model.allows("svc-a", "svc-b")
    assert not model.allows("svc-c", "svc-a")
    assert not model.allows("client", "svc-a")
    assert not model.allows("svc-b", "svc-a-db")
    assert set(model.callers_of("svc-a")) == {"gateway", "svc-b", "monitoring"}


def test_only_svc_b_reserves_stock_or_moves_money(repo_root, services):
    model = load_foundation(repo_root, services)
    assert model.allows("gateway", "svc-b", "/orders", "POST")
    assert model.allows("gateway", "svc-a", "/products", "POST")
    assert model.allows("gateway", "svc-a", "/stock/SKU-1/restock", "POST")
    assert model.allows("gateway", "svc-a", "/reservations/o-1", "GET")
    assert not model.allows("gateway", "svc-a", "/reservations", "POST")
    assert not model.allows("gateway", "svc-a", "/reservations/o-1/commit", "POST")
    assert not model.allows("gateway", "svc-a", "/stocks", "GET")  # a prefix, not a letter match
    assert model.allows("gateway", "svc-c", "/payments/p-1", "GET")
    assert model.allows("gateway", "svc-c", "/ledger/balances", "HEAD")
    assert not model.allows("gateway", "svc-c", "/payments/authorize", "POST")
    assert not model.allows("gateway", "svc-c", "/payments/p-1/refund", "POST")
    for path, method in (("/reservations", "POST"), ("/payments/authorize", "POST")):
        target = "svc-a" if path.startswith("/res") else "svc-c"
        assert model.allows("svc-b", target, path, method)
    assert model.callers_of("svc-c")["gateway"] == ("GET,HEAD /payments", "GET,HEAD /ledger")


def test_methods_must_be_http_methods(repo_root, services, text):
    broken = text.replace('methods = ["GET", "HEAD"]', 'methods = ["FETCH"]', 1)
    with pytest.raises(FoundationError, match="methods must be a non-empty list"):
        parse_foundation(broken, services)


def line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'to = "svc-c"\n\n[[flow]]\nfrom = "monitoring"',
            'to = "svc-x"\n\n[[flow]]\nfrom = "monitoring"',
            "goes nowhere",
        ),
        ('from = "svc-b"\nto = "svc-a"\n', 'from = "svc-q"\nto = "svc-a"\n', "flow from unknown 'svc-q'"),
        ("ports = [18500, 18599]", "ports = [18400, 18599]", "overlap tier 'services'"),
        ("ports = [18900, 18999]", "ports = [19000, 19100]", "outside the runtime range"),
        ('host = "127.0.0.1"', 'host = "0.0.0.0"', "not a loopback address"),
        (
            'from = "svc-c"\nto = "svc-c-db"',
            'from = "svc-c"\nto = "svc-a-db"',
            "reached by its owner svc-a only",
        ),
        (
            'members = ["svc-a", "svc-b", "svc-c"]',
            'members = ["svc-a", "svc-b"]',
            "'svc-c' (from svc-c/service.toml) is in no tier",
        ),
        ('from = "svc-b"\nto = "svc-c"\n', 'from = "svc-b"\nto = "svc-a"\n', "declared twice"),
    ],
)
def test_a_broken_model_is_refused_naming_the_line(text, services, old, new, message):
    assert old in text, old
    broken = text.replace(old, new, 1)
    with pytest.raises(FoundationError, match=re.escape(message)) as caught:
        parse_foundation(broken, services)
    assert "\n" not in str(caught.value)


def test_errors_name_the_line_of_the_offending_table(text, services):
    broken = text.replace('from = "svc-b"\nto = "svc-a"\n', 'from = "svc-b"\nto = "svc-z"\n', 1)
    expected = line_of(broken, 'to = "svc-z"') - 2  # the [[flow]] header above it
    with pytest.raises(FoundationError, match=f"line {expected}:"):
        parse_foundation(broken, services)


def test_a_declared_dependency_without_a_flow_is_refused(text, services):
    broken = text.replace('[[flow]]\nfrom = "svc-b"\nto = "svc-c"\n', "", 1)
    with pytest.raises(FoundationError, match=r"svc-b/service\.toml: depends on svc-c"):
        parse_foundation(broken, services)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T05:45:17.973123456Z", "2026-11-27T05:45:17.973123+00:00"),
        ("2026-11-27T05:45:17.97+01:00", "2026-11-27T05:45:17.970000+01:00"),
        ("2026-11-27T05:45:17Z", "2026-11-27T05:45:17+00:00"),
        ("0001-01-01T00:00:00Z", None),
        ("yesterday", None),
    ],
)
def test_prometheus_timestamps(text, expected):
    from caravan_workspace.runtime.monitoring import _timestamp

    parsed = _timestamp(text)
    assert (parsed.isoformat() if parsed else None) == expected
