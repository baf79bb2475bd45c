"""The OWASP API Security Top 10 (2023) as a test suite, against one whole system of its own.

The system is brought up by ``tests/system.py`` (the integration suites' helper) on SQLite in a
fresh workspace — its own supervisor, ports, keys and databases — and torn down afterwards;
``CARAVAN_IT_STATE=<folder>`` attaches to one already running there instead. Each module is one
item of the Top 10 (``test_api1_*`` … ``test_api10_*``) and asserts the exact answer of every
attack; the regressions of issue 18 say so in their docstrings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from attack import Attacker
from system import System, bring_up, tear_down


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    attached = os.environ.get("CARAVAN_IT_STATE")
    if attached:
        yield System(Path(attached), None)
        return
    state = tmp_path_factory.mktemp("system-security")
    try:
        yield bring_up(state, production_limits=True)
    finally:
        tear_down(state)


@pytest.fixture
def attacker(system: System) -> Iterator[Attacker]:
    """A client of the gateway from a loopback address of its own (so the failed-authentication
    allowance of one test never answers another's)."""
    with Attacker.fresh(system) as client:
        yield client
