"""The house rule for domains: what a domain may import, and what it may not."""

import pytest

from caravan_commons.architecture import domain_violations


def domain(tmp_path, files):
    root = tmp_path / "src" / "svc_x" / "domain"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PURE_MODEL = """\
from __future__ import annotations
import dataclasses
from decimal import Decimal
from caravan_commons.errors import ConflictError
from svc_x.domain.events import Event
from .events import Event as E

class Product: ...
"""


def test_a_pure_domain_passes(tmp_path):
    root = domain(
        tmp_path,
        {
            "__init__.py": "",
            "model.py": PURE_MODEL,
            "events.py": "class Event: ...\n",
        },
    )
    definitions, problems = domain_violations(root, "svc_x")
    assert problems == []
    assert definitions == 2


@pytest.mark.parametrize(
    ("line", "culprit"),
    [
        ("import litestar", "litestar"),
        ("from piccolo.table import Table", "piccolo.table"),
        ("import httpx", "httpx"),
        ("from opentelemetry import trace", "opentelemetry"),
        ("from caravan_commons.client import ServiceClient", "caravan_commons.client"),
        ("from svc_x.infrastructure import repo", "svc_x.infrastructure"),
        ("from ..api import controllers", "outside the domain"),
    ],
)
def test_framework_orm_and_infrastructure_imports_are_reported(tmp_path, line, culprit):
    root = domain(tmp_path, {"model.py": f"{line}\n\nclass Product: ...\n"})
    _, problems = domain_violations(root, "svc_x")
    assert len(problems) == 1 and culprit in problems[0] and "model.py:1" in problems[0]


def test_imports_inside_functions_count_too(tmp_path):
    root = domain(tmp_path, {"model.py": "def f():\n    import aiohttp\n"})
    _, problems = domain_violations(root, "svc_x")
    assert problems and "aiohttp" in problems[0]
