"""Wire types of svc-c's API (msgspec Structs on the commons base)."""

from __future__ import annotations

from caravan_commons.schemas import WireStruct


class ServiceInfo(WireStruct):
    service: str
    version: str
    commons: str
