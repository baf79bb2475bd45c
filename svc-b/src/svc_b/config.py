"""svc-b's settings: every field is read from CARAVAN_<FIELD> once, at start-up, and passed in.

Upstream addresses come from discovery (``CARAVAN_DISCOVERY_*``, see
:mod:`caravan_commons.discovery_config`; the runtime sets them), read once by ``build_app``.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from caravan_commons.settings import ServiceSettings
from svc_b import __version__

Seconds = Annotated[float, Meta(gt=0, le=3600)]


class Settings(ServiceSettings, frozen=True, kw_only=True):
    service_name: str = "svc-b"
    service_version: str = __version__
    #: Deadline of one call to svc-a or svc-c (never later than the request's own deadline).
    #: (Not CARAVAN_UPSTREAM_*: that prefix names static discovery's upstream addresses.)
    call_timeout_s: Seconds = 10.0
    #: How long after it was placed an order's calls that met a transient or unknown outcome are
    #: retried (same key, full-jitter backoff, Retry-After honoured) before it is compensated.
    saga_retry_deadline_s: Seconds = 30.0
    #: How long svc-b's circuit to svc-a or svc-c stays open before one trial call goes through.
    #: Short: a saga waiting out an upstream's restart resumes within about this long of its
    #: return, while an upstream that is down still gets one call per this long, not one per order.
    circuit_cooldown_s: Annotated[float, Meta(ge=0.1, le=300)] = 1.0
    #: How often the order sweeper renews this instance's leases and claims due orders (a crashed
    #: instance's orders are resumed within ``order_lease_s`` + this).
    sweep_interval_s: Seconds = 1.0
    #: How long a write holds an order for the instance driving it (renewed every sweep).
    order_lease_s: Annotated[float, Meta(ge=0.5, le=3600)] = 3.0
    #: How long POST /orders waits for the saga to finish before answering 202 (``Prefer: wait=N``
    #: chooses another wait, up to ``place_wait_max_s``); also how long a cancel waits.
    place_wait_s: Annotated[float, Meta(ge=0, le=3600)] = 2.0
    place_wait_max_s: Annotated[float, Meta(ge=0, le=3600)] = 60.0
    #: Unpaid orders placed longer ago than this are abandoned (compensated) instead of resumed.
    recovery_resume_within_s: Seconds = 900.0
    #: svc-b's own secret (provisioned, 0600): the HMAC key order ids are derived with.
    secret_key_file: str | None = None
    #: How often expired Idempotency-Key records are deleted.
    idempotency_sweep_interval_s: Seconds = 3600.0
