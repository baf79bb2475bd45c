"""The supervisor wrapper's config writing: what supervisord's own parser reads back."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from supervisor.datatypes import dict_of_key_value_pairs

from caravan_workspace.runtime.supervisor import MARKER_ENV, Supervisor, _env_line

values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0"), max_size=40
)


def _passable(value: str) -> bool:
    both_quotes = '"' in value and "'" in value
    return not both_quotes and not (value and (value[0] in "'\"" or value[-1] in "'\""))


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), values, max_size=5))
def test_environment_round_trips_through_supervisors_parser(env: dict[str, str]) -> None:
    passable = {k: v for k, v in env.items() if _passable(v)}
    line = _env_line(passable)
    # supervisord expands %(name)s (so % is written %%), then splits KEY="value" pairs
    assert dict_of_key_value_pairs(line % {}) == passable if passable else line == ""


@pytest.mark.parametrize("value", ["a\nb", "x\0", "'quoted'", "both \" and '"])
def test_environment_values_supervisor_cannot_carry_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        _env_line({"KEY": value})


def test_bad_variable_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid"):
        _env_line({"1BAD": "x"})


def test_config_points_everything_into_the_state_folder(tmp_path: Path) -> None:
    sv = Supervisor(tmp_path / "st")
    parser = configparser.RawConfigParser()
    parser.read_string(sv._config_text())
    home = str(tmp_path / "st" / "supervisor")
    assert parser["supervisord"]["pidfile"].startswith(home)
    assert parser["supervisord"]["logfile"].startswith(home)
    assert parser["unix_http_server"]["chmod"] == "0700"
    assert parser["include"]["files"] == f"{home}/programs/*.conf"
    assert parser["unix_http_server"]["file"] == str(sv.socket_path)


def test_a_deep_state_folder_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 20] * 6)
    sv = Supervisor(deep)
    assert len(str(sv.socket_path)) < 108
    assert sv.socket_path != deep / "supervisor" / "supervisor.sock"
    assert Supervisor(deep).socket_path == sv.socket_path  # stable: the same folder finds it again


def test_bad_program_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    sv = Supervisor(tmp_path)
    with pytest.raises(ValueError, match="program name"):
        sv.add_program("../evil", ["true"])
    with pytest.raises(ValueError, match="stop signal"):
        sv.add_program("ok", ["true"], stopsignal="NOPE")
    assert not (tmp_path / "supervisor").exists()


def test_marker_variable_is_the_documented_name() -> None:
    assert MARKER_ENV == "CARAVAN_SUPERVISOR_HOME"
