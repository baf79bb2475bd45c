"""The domain imports nothing but the standard library, commons' pure modules and itself (the
house rule, checked by the same code as the stage gate: caravan_commons.architecture)."""

from __future__ import annotations

from pathlib import Path

import svc_b
from caravan_commons.architecture import domain_violations

DOMAIN = Path(svc_b.__file__).parent / "domain"


def test_domain_has_modules() -> None:
    assert (DOMAIN / "model.py").is_file()


def test_domain_imports_only_the_standard_library_and_pure_commons_modules() -> None:
    _, offenders = domain_violations(DOMAIN, "svc_b")
    assert offenders == []
