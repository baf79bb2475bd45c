"""The login token (the Jupyter pattern) and the session cookie it buys.

``invoke console`` prints ``/login?token=…``; a correct token sets an HttpOnly, SameSite=Strict
session cookie holding an HMAC of the token (never the token itself) and redirects to the page
asked for. Every page but the login page, the static files and ``/healthz`` needs that cookie or
``Authorization: Bearer <token>``; actions (POST) need it as well as the CSRF token (Litestar's
CSRF middleware, double-submit cookie).
"""

from __future__ import annotations

import hashlib
import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

SESSION_COOKIE = "caravan_console_session"
PUBLIC = "public"


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"caravan-console-session", hashlib.sha256).hexdigest()


def token_matches(token: str, offered: str) -> bool:
    return hmac.compare_digest(token.encode(), offered.strip().encode())


def is_logged_in(connection: ASGIConnection, token: str) -> bool:
    cookie = connection.cookies.get(SESSION_COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return True
    scheme, _, offered = connection.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(offered) and token_matches(token, offered)


def require_login(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard: a handler marked ``opt={"public": True}`` is open, every other needs login."""
    if handler.opt.get(PUBLIC):
        return
    if not is_logged_in(connection, connection.app.state.settings.token):
        raise NotAuthorizedException("log in with the token `invoke console` printed")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no scheme, no other host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
