"""Choosing and configuring the discovery backend from settings, read once at start-up.

A service or the gateway calls :func:`load_discovery_settings` once (from its entry point, with
``os.environ``) and :func:`build_resolver` with the result::

    CARAVAN_DISCOVERY_BACKEND = local | static | consul | nomad          (default: local)

    local   CARAVAN_DISCOVERY_CATALOG        path of catalog.json (default
                                             $CARAVAN_STATE_DIR/runtime/catalog.json)
            CARAVAN_DISCOVERY_STALE_AFTER_S  treat every instance as down when the catalogue is older
    static  CARAVAN_UPSTREAM_<NAME>=http://host:port[,...]   (caravan_commons.discovery)
    consul  CARAVAN_DISCOVERY_CONSUL_ADDR    else CONSUL_HTTP_ADDR (+ CONSUL_HTTP_SSL), else http://127.0.0.1:8500
            CARAVAN_DISCOVERY_CONSUL_TOKEN   else CONSUL_HTTP_TOKEN
            CARAVAN_DISCOVERY_CONSUL_CACERT  else CONSUL_CACERT
            CARAVAN_DISCOVERY_CONSUL_DC, CARAVAN_DISCOVERY_CONSUL_WAIT_S (blocking wait, default 30)
    nomad   CARAVAN_DISCOVERY_NOMAD_ADDR     else NOMAD_ADDR, else http://127.0.0.1:4646
            CARAVAN_DISCOVERY_NOMAD_TOKEN    else NOMAD_TOKEN
            CARAVAN_DISCOVERY_NOMAD_NAMESPACE / _REGION / _CACERT
                                             else NOMAD_NAMESPACE / NOMAD_REGION / NOMAD_CACERT
            CARAVAN_DISCOVERY_NOMAD_REFRESH_S (cache lifetime, default 2)

A ``CARAVAN_DISCOVERY_*`` value wins over the tool's own variable (the Consul clients would let
CONSUL_HTTP_TOKEN win over an explicit token; the adapter does not). Bad values raise
:class:`~caravan_commons.settings.SettingsError` naming the variable; a backend whose extra is not
installed raises :class:`~caravan_commons.discovery.DiscoveryConfigError` naming what to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from caravan_commons.discovery import DiscoveryConfigError, Resolver, StaticResolver
from caravan_commons.settings import SettingsError, load_settings

Backend = Literal["local", "static", "consul", "nomad"]
PREFIX = "CARAVAN_DISCOVERY_"


class DiscoverySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    backend: Backend = "local"
    catalog: str | None = None
    stale_after_s: Annotated[float, Meta(gt=0)] | None = None
    consul_addr: str | None = None
    consul_token: str | None = None
    consul_cacert: str | None = None
    consul_dc: str | None = None
    consul_wait_s: Annotated[float, Meta(gt=0, le=600)] = 30.0
    nomad_addr: str | None = None
    nomad_token: str | None = None
    nomad_namespace: str | None = None
    nomad_region: str | None = None
    nomad_cacert: str | None = None
    nomad_refresh_s: Annotated[float, Meta(ge=0)] = 2.0


def load_discovery_settings(environ: Mapping[str, str]) -> DiscoverySettings:
    """``CARAVAN_DISCOVERY_*`` → :class:`DiscoverySettings`; the default catalogue path from
    ``CARAVAN_STATE_DIR`` (else ``.caravan``) is filled in for the local backend."""
    settings = load_settings(DiscoverySettings, environ, prefix=PREFIX)  # type: ignore[type-var]  # any Struct works
    if settings.backend == "local" and settings.catalog is None:
        state = environ.get("CARAVAN_STATE_DIR") or ".caravan"
        settings = msgspec.structs.replace(settings, catalog=str(Path(state) / "runtime" / "catalog.json"))
    return settings


def build_resolver(settings: DiscoverySettings, environ: Mapping[str, str]) -> Resolver:
    """The resolver the settings name. ``environ`` supplies the static backend's
    ``CARAVAN_UPSTREAM_*`` and the Consul/Nomad tools' own variables (read here, once)."""
    if settings.backend == "local":
        from caravan_commons.discovery_local import LocalCatalogResolver

        assert settings.catalog is not None, "use load_discovery_settings"
        return LocalCatalogResolver(settings.catalog, stale_after=settings.stale_after_s)
    if settings.backend == "static":
        return StaticResolver.from_env(environ)
    if settings.backend == "consul":
        from caravan_commons.discovery_consul import ConsulAdapter, ConsulConfig, ConsulResolver

        config = ConsulConfig.from_env(
            environ,
            address=settings.consul_addr,
            token=settings.consul_token,
            ca_file=settings.consul_cacert,
            datacenter=settings.consul_dc,
            wait=settings.consul_wait_s,
        )
        return ConsulResolver(ConsulAdapter(config))
    if settings.backend == "nomad":
        from caravan_commons.discovery_nomad import NomadAdapter, NomadConfig, NomadResolver

        nomad_config = NomadConfig.from_env(
            environ,
            address=settings.nomad_addr,
            token=settings.nomad_token,
            namespace=settings.nomad_namespace,
            region=settings.nomad_region,
            ca_file=settings.nomad_cacert,
            refresh=settings.nomad_refresh_s,
        )
        return NomadResolver(NomadAdapter(nomad_config))
    raise DiscoveryConfigError(f"unknown discovery backend {settings.backend!r}")  # pragma: no cover


def resolver_from_env(environ: Mapping[str, str]) -> Resolver:
    """:func:`load_discovery_settings` + :func:`build_resolver` for entry points."""
    return build_resolver(load_discovery_settings(environ), environ)


__all__ = [
    "Backend",
    "DiscoveryConfigError",
    "DiscoverySettings",
    "SettingsError",
    "build_resolver",
    "load_discovery_settings",
    "resolver_from_env",
]
