"""Shared fixtures for the commons unit tests (in-process apps, no network)."""

from __future__ import annotations

import pytest

from caravan_commons.settings import ServiceSettings, load_settings


@pytest.fixture
def settings() -> ServiceSettings:
    return load_settings(
        ServiceSettings,
        {
            "CARAVAN_SERVICE_NAME": "unit-svc",
            "CARAVAN_SERVICE_VERSION": "1.2.3",
            "CARAVAN_TRACE_EXPORTER": "memory",
            "CARAVAN_TRACE_SAMPLE_RATIO": "1.0",  # the tests read every request's span
        },
    )
