"""The gateway's settings: the commons ServiceSettings plus routing, discovery, auth and limits.

Read once at start-up from ``CARAVAN_*`` variables (``load_settings``), then passed in. The route
table is data handed over by the runtime (derived from every ``svc-*/service.toml``), never a list
kept here::

    CARAVAN_GATEWAY_ROUTES='{"/api/svc-a": "svc-a", "/api/svc-b": "svc-b"}'

Instances are found through the commons discovery configuration (``CARAVAN_DISCOVERY_BACKEND`` =
``local`` | ``static`` | ``consul`` | ``nomad`` and its ``CARAVAN_DISCOVERY_*`` variables, read by
:func:`caravan_commons.discovery_config.resolver_from_env`), the same as every service.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from caravan_commons.settings import ServiceSettings


class GatewaySettings(ServiceSettings, frozen=True, kw_only=True):
    service_name: str = "gateway"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    #: Route prefix → service name (JSON object), derived by the workspace from the declarations.
    gateway_routes: dict[str, str]
    #: Ed25519 private key of the gateway's service identity; unset: calls go out unsigned.
    identity_key_file: str | None = None
    #: Hashed API keys (``python -m caravan_gateway add-key`` writes it, mode 0600).
    api_keys_file: str | None = None
    #: Verification key of JWTs: a PEM public key, or the shared secret for HS* algorithms.
    jwt_key_file: str | None = None
    jwt_algorithms: list[str] = msgspec.field(default_factory=lambda: ["EdDSA", "ES256", "RS256"])
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: Largest request body accepted, in bytes (Content-Length and streamed bytes are both checked).
    max_body_bytes: Annotated[int, Meta(ge=0)] = 10 * 1024 * 1024
    #: Per-customer token bucket: sustained requests per second and burst size. Sized from the
    #: measured capacity (bench/e2e_orders.py: the whole system confirms 11-35 orders/s on two
    #: cores): one customer may use about the system's order capacity, not a multiple of it.
    rate_per_second: Annotated[float, Meta(gt=0)] = 50.0
    rate_burst: Annotated[int, Meta(ge=1)] = 100
    #: Failed authentications per client address: sustained per second and burst; over it, 429.
    auth_failures_per_second: Annotated[float, Meta(gt=0)] = 1.0
    auth_failures_burst: Annotated[int, Meta(ge=1)] = 30
    #: Longest request target (path and query) in bytes; longer → 414.
    max_target_bytes: Annotated[int, Meta(ge=64)] = 8192
    #: How long a client may take to send a complete request head; then 408 and close.
    head_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    #: Most client connections held at once; one more is answered 503 and closed.
    max_connections: Annotated[int, Meta(ge=1)] = 1024
    #: What the foundation model lets the gateway call on each service (service → rules, see
    #: ``caravan_commons.identity.rule_matches``; null: everything): the public OpenAPI document
    #: lists only those operations. Unset: every operation of every service.
    gateway_policy: dict[str, list[str] | None] | None = None
    #: Deadline of a request that brings none (X-Request-Timeout-Ms), and the most it may ask for.
    default_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    max_timeout_s: Annotated[float, Meta(gt=0)] = 120.0
    connect_timeout_s: Annotated[float, Meta(gt=0)] = 1.0
    max_attempts: Annotated[int, Meta(ge=1, le=10)] = 3
    retry_budget_ratio: Annotated[float, Meta(ge=0, le=1)] = 0.2
    retry_budget_min_per_second: Annotated[int, Meta(ge=0)] = 10
    #: Bodies up to this size of retryable requests are held so they can be sent again.
    retry_body_bytes: Annotated[int, Meta(ge=0)] = 64 * 1024
    circuit_failure_threshold: Annotated[int, Meta(ge=1)] = 5
    circuit_cooldown_s: Annotated[float, Meta(ge=0)] = 5.0
    eject_after: Annotated[int, Meta(ge=1)] = 3
    eject_cooldown_s: Annotated[float, Meta(ge=0)] = 10.0
    #: How long an idle client keep-alive connection is kept open.
    keepalive_timeout_s: Annotated[float, Meta(gt=0)] = 75.0
    shutdown_timeout_s: Annotated[float, Meta(gt=0)] = 20.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.api_keys_file and not self.jwt_key_file:
            raise ValueError("api_keys_file or jwt_key_file must be set: the gateway authenticates callers")
        hmac = {a.startswith("HS") for a in self.jwt_algorithms}
        if not self.jwt_algorithms or len(hmac) != 1 or "none" in {a.lower() for a in self.jwt_algorithms}:
            raise ValueError(
                "jwt_algorithms must be a non-empty list of either HMAC (HS*) or asymmetric"
                " algorithms, not both"
            )
