"""Settings come from CARAVAN_* variables; a bad one is one clear error naming it."""

from __future__ import annotations

import pytest

from caravan_commons.settings import SettingsError, load_settings
from svc_b.config import Settings


def test_defaults_name_the_service_and_bind_loopback() -> None:
    settings = load_settings(Settings, {})
    assert settings.service_name == "svc-b"
    assert settings.host == "127.0.0.1"


def test_values_are_read_from_the_environment() -> None:
    settings = load_settings(Settings, {"CARAVAN_PORT": "9123", "CARAVAN_LOG_LEVEL": "debug"})
    assert settings.port == 9123
    assert settings.log_level == "DEBUG"


def test_a_malformed_port_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="CARAVAN_PORT"):
        load_settings(Settings, {"CARAVAN_PORT": "eighty"})
