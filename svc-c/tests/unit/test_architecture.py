"""The domain imports nothing but the standard library, itself and commons' pure modules (the
same rule, from caravan_commons.architecture, that the stage gate applies)."""

from __future__ import annotations

from pathlib import Path

import svc_c
from caravan_commons.architecture import domain_violations

DOMAIN = Path(svc_c.__file__).parent / "domain"


def test_domain_has_modules() -> None:
    assert (DOMAIN / "model.py").is_file()


def test_domain_imports_only_the_standard_library_and_pure_commons_modules() -> None:
    definitions, problems = domain_violations(DOMAIN, "svc_c")
    assert problems == []
    assert definitions > 0
