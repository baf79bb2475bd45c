"""svc-c's settings: every field is read from CARAVAN_<FIELD> once, at start-up, and passed in."""

from __future__ import annotations

from caravan_commons.settings import ServiceSettings
from svc_c import __version__


class Settings(ServiceSettings, frozen=True, kw_only=True):
    service_name: str = "svc-c"
    service_version: str = __version__
