"""Settings: typed parsing from an environment mapping, one-line errors naming the variable."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_commons.settings import ServiceSettings, SettingsError, load_settings, load_settings_or_exit

BASE = {"CARAVAN_SERVICE_NAME": "svc-a"}


class ExtendedSettings(ServiceSettings, frozen=True, kw_only=True):
    service_name: str = "svc-x"
    upstreams: list[str] = []
    reservation_ttl_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    strict_mode: bool = False


def test_defaults_are_loopback_and_derived_from_the_service_name() -> None:
    settings = load_settings(ServiceSettings, BASE)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.trace_exporter == "file"
    assert settings.trace_file == "svc-a.traces.jsonl"
    assert settings.database_url == "sqlite:///svc-a.sqlite3"
    assert settings.log_file is None


def test_values_are_parsed_from_text() -> None:
    settings = load_settings(
        ServiceSettings,
        {**BASE, "CARAVAN_PORT": "8123", "CARAVAN_LOG_LEVEL": "debug", "CARAVAN_TRACE_SAMPLE_RATIO": "0.25",
         "CARAVAN_OTLP_ENDPOINT": "http://127.0.0.1:4318/v1/traces", "CARAVAN_LOG_FILE": ""},
    )  # fmt: skip
    assert settings.port == 8123
    assert settings.log_level == "DEBUG"
    assert settings.trace_sample_ratio == 0.25
    assert settings.trace_exporter == "otlp"  # auto: an endpoint is configured
    assert settings.log_file is None  # empty optional value means None


def test_subclass_fields_and_prefix() -> None:
    settings = load_settings(
        ExtendedSettings, {"SVC_UPSTREAMS": '["svc-a", "svc-c"]', "SVC_STRICT_MODE": "true"}, prefix="SVC_"
    )
    assert settings.service_name == "svc-x"
    assert settings.upstreams == ["svc-a", "svc-c"]
    assert settings.strict_mode is True


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "CARAVAN_SERVICE_NAME"),
        ({**BASE, "CARAVAN_PORT": "eighty"}, "CARAVAN_PORT"),
        ({**BASE, "CARAVAN_PORT": "70000"}, "CARAVAN_PORT"),
        ({**BASE, "CARAVAN_LOG_LEVEL": "loud"}, "CARAVAN_LOG_LEVEL"),
        ({**BASE, "CARAVAN_TRACE_EXPORTER": "zipkin"}, "CARAVAN_TRACE_EXPORTER"),
        ({**BASE, "CARAVAN_TRACE_EXPORTER": "otlp"}, "CARAVAN_TRACE_EXPORTER"),
        ({**BASE, "CARAVAN_TRACE_SAMPLE_RATIO": "1.5"}, "CARAVAN_TRACE_SAMPLE_RATIO"),
        ({"CARAVAN_SERVICE_NAME": "Bad Name"}, "CARAVAN_SERVICE_NAME"),
    ],
)
def test_bad_or_missing_variable_names_it_in_one_line(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ServiceSettings, environ)
    message = str(caught.value)
    assert message.startswith(variable + ":")
    assert caught.value.variable == variable
    assert "\n" not in message


def test_bad_json_for_a_list_field_names_it() -> None:
    with pytest.raises(SettingsError, match=r"^SVC_UPSTREAMS: invalid value"):
        load_settings(ExtendedSettings, {"SVC_UPSTREAMS": "[svc-a"}, prefix="SVC_")


def test_entry_point_helper_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings_or_exit(ServiceSettings, {**BASE, "CARAVAN_PORT": "x"}, program="svc-a")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("svc-a: configuration error: CARAVAN_PORT: invalid value 'x'")


@given(st.integers(min_value=0, max_value=65535))
def test_any_valid_port_round_trips(port: int) -> None:
    assert load_settings(ServiceSettings, {**BASE, "CARAVAN_PORT": str(port)}).port == port


@given(st.text().filter(lambda s: s.strip() != ""))
def test_any_port_text_either_parses_in_range_or_names_the_variable(raw: str) -> None:
    try:
        port = load_settings(ServiceSettings, {**BASE, "CARAVAN_PORT": raw}).port
    except SettingsError as error:
        assert error.variable == "CARAVAN_PORT"
        assert "\n" not in str(error)
    else:
        assert 0 <= port <= 65535


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_string_values_are_kept_verbatim(raw: str) -> None:
    assert load_settings(ServiceSettings, {**BASE, "CARAVAN_SERVICE_VERSION": raw}).service_version == raw


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_sample_ratio_round_trips(ratio: float) -> None:
    assert (
        load_settings(ServiceSettings, {**BASE, "CARAVAN_TRACE_SAMPLE_RATIO": repr(ratio)}).trace_sample_ratio
        == ratio
    )


@given(st.lists(st.text(min_size=1, max_size=10), max_size=5))
def test_list_fields_round_trip_through_json(upstreams: list[str]) -> None:
    raw = msgspec.json.encode(upstreams).decode()
    assert load_settings(ExtendedSettings, {"CARAVAN_UPSTREAMS": raw}).upstreams == upstreams
