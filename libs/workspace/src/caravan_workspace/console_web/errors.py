"""Errors as the console answers them: an error page for a browser (the login page for a missing
or wrong login), RFC 9457 problem+json for everything else — never a bare 500."""

from __future__ import annotations

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from loguru import logger

TITLES = {400: "Bad request", 401: "Log in", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Busy", 500: "Internal error"}  # fmt: skip


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept or request.headers.get("hx-request") == "true"


def _answer(request: Request, status: int, detail: str) -> Response:
    title = TITLES.get(status, "Error")
    if _wants_html(request):
        if status == 401:
            return Template(
                template_name="login.html.j2",
                context={"next": request.url.path, "problem": detail, "page": "login"},
                status_code=401,
            )
        return Template(
            template_name="error.html.j2",
            context={"status": status, "title": title, "detail": detail, "page": "error"},
            status_code=status,
        )
    return Response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if isinstance(exc, NotAuthorizedException) or exc.status_code < 500 else TITLES[500]
    return _answer(request, exc.status_code, str(detail))


def internal_error(request: Request, exc: Exception) -> Response:
    logger.opt(exception=exc).error("console: {} {} failed", request.method, request.url.path)
    return _answer(request, HTTP_500_INTERNAL_SERVER_ERROR, f"the console failed: {type(exc).__name__}")


__all__ = ["MediaType", "http_error", "internal_error"]
