"""The stage gate's round trips against the running system (``pytest tests/gateway``): the gateway
with the provisioned API keys, and svc-a's instances found through discovery, called as svc-b.
Every test is repeatable on the same database: fresh skus and order ids each run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from caravan_commons.testing import RuntimeAccess
from svc_a.domain.model import GATE_SKU_PREFIX

DEMO_SKUS = ["BAG-SLEEP", "BOTTLE-1L", "LAMP-HEAD", "MAT-AIR", "MUG01", "PACK-40L", "STOVE-GAS", "TENT-2P"]


@pytest.fixture(scope="session")
def access() -> RuntimeAccess:
    return RuntimeAccess.from_env()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as client:
        yield client


def fresh_sku() -> str:
    """A product sku in the gate namespace: the gate's products never show in listings."""
    return f"{GATE_SKU_PREFIX}{uuid.uuid4().hex[:12].upper()}"


def fresh_order() -> str:
    return f"gw-{uuid.uuid4()}"


def is_problem(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers.get("content-type", "").startswith(
        "application/problem+json"
    )
