"""svc-c's settings: every field is read from CARAVAN_<FIELD> once, at start-up, and passed in.

``database_url`` (CARAVAN_DATABASE_URL) comes from the commons settings; unset, it is the SQLite
file ``svc-c.sqlite3`` in the working directory (local runs).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from caravan_commons.settings import ServiceSettings
from svc_c import __version__


class Settings(ServiceSettings, frozen=True, kw_only=True):
    service_name: str = "svc-c"
    service_version: str = __version__
    #: How long the simulated processor takes to answer the slow test token (tok_slow), seconds.
    processor_slow_delay_s: Annotated[float, Meta(ge=0, le=300)] = 5.0
    #: How long an Idempotency-Key's stored response is replayed, and how often expired ones go.
    idempotency_ttl_s: Annotated[float, Meta(gt=0)] = 86_400.0
    idempotency_sweep_interval_s: Annotated[float, Meta(gt=0)] = 3_600.0
