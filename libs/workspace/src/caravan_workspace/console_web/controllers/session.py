"""Logging in with the token, the front page, and the health check."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from caravan_workspace.console_web.auth import PUBLIC, SESSION_COOKIE, safe_next, session_value, token_matches
from caravan_workspace.console_web.context import Console, ConsoleDep


def _logged_in(console: Console, target: str | None, status: Literal[302, 303] = 302) -> Redirect:
    response = Redirect(path=safe_next(target), status_code=status)
    response.set_cookie(
        SESSION_COOKIE, session_value(console.settings.token), httponly=True, samesite="strict", path="/"
    )
    return response


class SessionController(Controller):
    @get("/login", opt={PUBLIC: True}, sync_to_thread=False)
    def login_page(
        self, console: ConsoleDep, token: FromQuery[str | None] = None, next: FromQuery[str | None] = None
    ) -> Template | Redirect:
        """The Jupyter pattern: the URL `invoke console` prints carries the token."""
        if token is not None:
            if not token_matches(console.settings.token, token):
                raise NotAuthorizedException(
                    "that token is not this console's: use the one `invoke console` printed"
                )
            return _logged_in(console, next)
        return Template(template_name="login.html.j2", context={"next": safe_next(next), "page": "login"})

    @post("/login", opt={PUBLIC: True}, sync_to_thread=False, status_code=303)
    def login(
        self,
        console: ConsoleDep,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        if not token_matches(console.settings.token, data.get("token", "")):
            raise NotAuthorizedException(
                "that token is not this console's: use the one `invoke console` printed"
            )
        return _logged_in(console, data.get("next"), status=303)

    @get("/", sync_to_thread=False)
    def index(self) -> Redirect:
        return Redirect(path="/plan")

    @get("/healthz", opt={PUBLIC: True}, sync_to_thread=False, media_type="text/plain")
    def healthz(self, request: Request) -> str:
        return "ok"
