"""Selecting the discovery backend from CARAVAN_DISCOVERY_* (and the tools' own variables)."""

from __future__ import annotations

import importlib.util

import pytest

from caravan_commons.discovery import DiscoveryConfigError, StaticResolver
from caravan_commons.discovery_config import build_resolver, load_discovery_settings, resolver_from_env
from caravan_commons.discovery_local import LocalCatalogResolver
from caravan_commons.settings import SettingsError


def test_local_is_the_default_and_follows_the_state_folder() -> None:
    resolver = resolver_from_env({"CARAVAN_STATE_DIR": "/srv/caravan-state"})
    assert isinstance(resolver, LocalCatalogResolver)
    assert str(resolver.path) == "/srv/caravan-state/runtime/catalog.json"
    explicit = resolver_from_env({"CARAVAN_DISCOVERY_CATALOG": "/x/catalog.json", "CARAVAN_STATE_DIR": "/y"})
    assert str(explicit.path) == "/x/catalog.json"  # type: ignore[attr-defined]
    assert str(resolver_from_env({}).path) == ".caravan/runtime/catalog.json"  # type: ignore[attr-defined]


def test_static_backend_reads_the_upstream_variables() -> None:
    resolver = resolver_from_env(
        {"CARAVAN_DISCOVERY_BACKEND": "static", "CARAVAN_UPSTREAM_SVC_A": "http://127.0.0.1:8101"}
    )
    assert isinstance(resolver, StaticResolver) and resolver.services == ["svc-a"]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CARAVAN_DISCOVERY_BACKEND": "zookeeper"}, "CARAVAN_DISCOVERY_BACKEND"),
        ({"CARAVAN_DISCOVERY_CONSUL_WAIT_S": "900"}, "CARAVAN_DISCOVERY_CONSUL_WAIT_S"),
        ({"CARAVAN_DISCOVERY_STALE_AFTER_S": "-1"}, "CARAVAN_DISCOVERY_STALE_AFTER_S"),
        ({"CARAVAN_DISCOVERY_NOMAD_REFRESH_S": "soon"}, "CARAVAN_DISCOVERY_NOMAD_REFRESH_S"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_discovery_settings(environ)
    assert str(info.value).startswith(variable)


@pytest.mark.skipif(
    importlib.util.find_spec("consul") is None, reason="checks the consul extra's configuration"
)
def test_consul_backend_settings_win_over_consul_variables() -> None:
    resolver = resolver_from_env(
        {
            "CARAVAN_DISCOVERY_BACKEND": "consul",
            "CARAVAN_DISCOVERY_CONSUL_ADDR": "http://127.0.0.1:18500",
            "CARAVAN_DISCOVERY_CONSUL_WAIT_S": "5",
            "CONSUL_HTTP_ADDR": "127.0.0.1:1",
            "CONSUL_HTTP_TOKEN": "from-consul-variable",
        }
    )
    config = resolver.adapter.config  # type: ignore[attr-defined]
    assert (config.address, config.token, config.wait) == (
        "http://127.0.0.1:18500",
        "from-consul-variable",
        5.0,
    )


def test_a_backend_without_its_client_names_what_to_install() -> None:
    for backend, module, hint in [
        ("consul", "consul", "py-consul==1.8.0"),
        ("nomad", "nomad", "python-nomad"),
    ]:
        if importlib.util.find_spec(module) is not None:
            continue
        with pytest.raises(DiscoveryConfigError, match=hint):
            build_resolver(load_discovery_settings({"CARAVAN_DISCOVERY_BACKEND": backend}), {})
