"""Service identity enforced on every service: the ASGI middleware, and its wiring from settings.

Every request but the exempt ones (health probes, /metrics, the schema: the supervisor and
Prometheus reach them on loopback, and the foundation model grants monitoring exactly those paths)
must carry an assertion in ``X-Caravan-Identity`` (its format, the signing and the checks are in
:mod:`caravan_commons.identity_keys`, whose names this module re-exports). The middleware checks it
against the request, then that the foundation model allows ``caller → service`` on that path. The
customer and scopes a service acts on come from the verified claims only
(:mod:`caravan_commons.principal`). No valid identity, a replay, or one issued for another request
→ 401; a valid caller the model does not allow → 403; a method no route takes → 405 (problem+json
through the one error mapping; the details never name other programs).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from caravan_commons.errors import ForbiddenError, MethodNotAllowedError, UnauthorizedError
from caravan_commons.identity_keys import (
    CUSTOMER_PATTERN,
    DEFAULT_EXEMPT,
    IDENTITY_HEADER,
    MAX_SCOPES,
    NAME_PATTERN,
    PUBLIC_KEYS_FILE,
    SCOPE_PATTERN,
    VERSION,
    Assertion,
    Policy,
    Signer,
    Verifier,
    generate_identities,
    load_private_key,
    load_public_keys,
    rule_matches,
    valid_customer,
    valid_scopes,
)
from caravan_commons.problem_documents import PROBLEM_MEDIA_TYPE, problem_document, problem_headers
from caravan_commons.settings import ServiceSettings, SettingsError

__all__ = [
    "ASSERTION_STATE_KEY",
    "CALLER_STATE_KEY",
    "CUSTOMER_PATTERN",
    "DEFAULT_EXEMPT",
    "IDENTITY_HEADER",
    "MAX_SCOPES",
    "NAME_PATTERN",
    "PUBLIC_KEYS_FILE",
    "SCOPE_PATTERN",
    "VERSION",
    "Assertion",
    "IdentityMiddleware",
    "Policy",
    "Signer",
    "Verifier",
    "assertion_of",
    "caller_of",
    "from_settings",
    "generate_identities",
    "load_private_key",
    "load_public_keys",
    "rule_matches",
    "valid_customer",
    "valid_scopes",
]

CALLER_STATE_KEY = "caravan_caller"
ASSERTION_STATE_KEY = "caravan_assertion"


# ---------------------------------------------------------------------- the ASGI middleware


class IdentityMiddleware:
    """ASGI middleware in front of the whole app (unknown paths included): no valid identity → 401,
    a caller without an allowed flow → 403, both as problem+json through the one mapping."""

    def __init__(
        self,
        app: Any,
        *,
        verifier: Verifier,
        policy: Policy,
        exempt: tuple[str, ...] = DEFAULT_EXEMPT,
        router: Any = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = policy
        self.exempt = exempt
        #: The app's Litestar router: a caller refused only for the method learns the method does
        #: not exist there at all (405 with Allow) rather than that it is forbidden.
        self.router = router
        self._header = IDENTITY_HEADER.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        token = customer = scopes = None
        for name, value in scope["headers"]:
            if name == self._header:
                token = value.decode("latin-1")
            elif name == _CUSTOMER:
                customer = value.decode("latin-1")
            elif name == _SCOPES:
                scopes = value.decode("latin-1")
        try:
            assertion = self.verifier.verify(token, method=scope["method"], path=scope["path"])
            if (customer is not None and customer != assertion.customer) or (
                scopes is not None and frozenset(scopes.split()) != assertion.scopes
            ):
                raise UnauthorizedError("the asserted customer or scopes do not match the caller identity")
            if not self.policy.allows(assertion.caller, scope["path"], scope["method"]):
                self._refuse_unknown_method(scope)
                raise ForbiddenError(f"{scope['method']} {_short(scope['path'])} is not open to this caller")
        except (UnauthorizedError, ForbiddenError, MethodNotAllowedError) as exc:
            await _send_problem(send, exc)
            return
        state = scope.setdefault("state", {})
        state[CALLER_STATE_KEY] = assertion.caller
        state[ASSERTION_STATE_KEY] = assertion
        await self.app(scope, receive, send)

    def _refuse_unknown_method(self, scope: Any) -> None:
        """Raise 405 when no route of the app takes this method on the path (whoever calls)."""
        if self.router is None:
            return
        from litestar.exceptions import MethodNotAllowedException, NotFoundException

        try:
            self.router.handle_routing(scope["path"], scope["method"])
        except MethodNotAllowedException as exc:
            allow = tuple(m.strip() for m in (exc.headers or {}).get("allow", "").split(",") if m.strip())
            raise MethodNotAllowedError(
                f"{_short(scope['path'])} does not take {scope['method']}", allow=allow
            ) from None
        except NotFoundException:
            return


_CUSTOMER = b"x-caravan-customer"
_SCOPES = b"x-caravan-scopes"


def _short(path: str, limit: int = 200) -> str:
    """A path as it may appear in an answer: never unbounded."""
    return path if len(path) <= limit else path[:limit] + "…"


async def _send_problem(send: Any, exc: UnauthorizedError | ForbiddenError | MethodNotAllowedError) -> None:
    body = json.dumps(problem_document(exc)).encode()
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (problem_headers(exc) or {}).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def from_settings(
    settings: ServiceSettings,
) -> tuple[Callable[..., IdentityMiddleware] | None, Signer | None]:
    """A wrapper installing the identity middleware (when the settings name public keys and
    allowed callers) and the signer for outgoing calls (when they name a private key). A file that
    cannot be read, or allowed callers that are not JSON, stop start-up with one line naming the
    setting."""
    middleware = signer = None
    if settings.public_keys_file or settings.allowed_callers:
        if not (settings.public_keys_file and settings.allowed_callers):
            raise SettingsError(
                "CARAVAN_PUBLIC_KEYS_FILE" if not settings.public_keys_file else "CARAVAN_ALLOWED_CALLERS",
                "identity enforcement needs both the public keys file and the allowed callers",
            )
        try:
            verifier = Verifier.from_file(settings.service_name, Path(settings.public_keys_file))
        except (OSError, ValueError) as exc:
            raise SettingsError("CARAVAN_PUBLIC_KEYS_FILE", f"cannot load public keys: {exc}") from exc
        try:
            policy = Policy.from_json(settings.service_name, settings.allowed_callers)
        except ValueError as exc:
            raise SettingsError(
                "CARAVAN_ALLOWED_CALLERS", f"not a JSON object of caller → paths: {exc}"
            ) from exc
        middleware = functools.partial(IdentityMiddleware, verifier=verifier, policy=policy)
    if settings.identity_key_file:
        try:
            signer = Signer.from_file(
                settings.identity_name or settings.service_name, Path(settings.identity_key_file)
            )
        except (OSError, ValueError) as exc:
            raise SettingsError("CARAVAN_IDENTITY_KEY_FILE", f"cannot load the private key: {exc}") from exc
    return middleware, signer


def caller_of(scope: Mapping[str, Any]) -> str | None:
    """The verified caller of the current request (set by IdentityMiddleware)."""
    return scope.get("state", {}).get(CALLER_STATE_KEY)


def assertion_of(scope: Mapping[str, Any]) -> Assertion | None:
    """The verified assertion of the current request (set by IdentityMiddleware)."""
    return scope.get("state", {}).get(ASSERTION_STATE_KEY)
