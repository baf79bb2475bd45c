"""svc-a's settings: every field is read from CARAVAN_<FIELD> once, at start-up, and passed in."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from caravan_commons.settings import ServiceSettings
from svc_a import __version__


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """``database_url`` (CARAVAN_DATABASE_URL) defaults to ``sqlite:///svc-a.sqlite3``, a file in the
    working directory (commons' default), which suits a local run."""

    service_name: str = "svc-a"
    service_version: str = __version__
    #: How long a reservation holds stock before the sweeper releases it (CARAVAN_RESERVATION_TTL_S).
    reservation_ttl_s: Annotated[float, Meta(gt=0, le=7 * 86400)] = 900.0
    #: How often the sweeper looks for expired reservations (CARAVAN_RESERVATION_SWEEP_INTERVAL_S).
    reservation_sweep_interval_s: Annotated[float, Meta(gt=0, le=3600)] = 5.0
    #: How often expired Idempotency-Key records are deleted (CARAVAN_IDEMPOTENCY_SWEEP_INTERVAL_S).
    idempotency_sweep_interval_s: Annotated[float, Meta(gt=0)] = 3600.0
