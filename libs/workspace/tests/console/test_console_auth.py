"""The login token (0600, printed by `invoke console`), the session cookie and CSRF."""

from __future__ import annotations

import stat

import pytest
from console_support import csrf
from litestar.testing import TestClient

from caravan_workspace.console_web.auth import safe_next
from caravan_workspace.console_web.settings import ConsoleSettings, ensure_token, token_path


def test_the_token_is_made_once_in_a_file_only_its_owner_reads(settings: ConsoleSettings) -> None:
    path = token_path(settings.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(settings.state_dir) == settings.token
    assert len(settings.token) >= 40


@pytest.mark.parametrize("path", ["/plan", "/programs", "/logs/svc-b-1", "/traces", "/metrics", "/alerts"])
def test_every_page_asks_for_the_token(anonymous: TestClient, path: str) -> None:
    browser = anonymous.get(path, headers={"accept": "text/html"})
    assert browser.status_code == 401
    assert 'name="token"' in browser.text  # the login form
    api = anonymous.get(path)
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.json()["status"] == 401


def test_a_wrong_token_is_refused_and_buys_no_session(anonymous: TestClient) -> None:
    answer = anonymous.get(
        "/login?token=not-the-token", headers={"accept": "text/html"}, follow_redirects=False
    )
    assert answer.status_code == 401
    assert "caravan_console_session" not in answer.cookies
    assert anonymous.get("/plan", headers={"authorization": "Bearer not-the-token"}).status_code == 401


def test_the_printed_link_logs_in_and_goes_where_asked(
    anonymous: TestClient, settings: ConsoleSettings
) -> None:
    answer = anonymous.get(f"/login?token={settings.token}&next=/traces", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "/traces"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert settings.token not in cookie  # the cookie holds an HMAC of the token, not the token
    assert anonymous.get("/plan").status_code == 200


def test_the_login_form_needs_its_csrf_token(anonymous: TestClient, settings: ConsoleSettings) -> None:
    anonymous.get("/login")
    bare = anonymous.post("/login", data={"token": settings.token}, follow_redirects=False)
    assert bare.status_code == 403
    field = anonymous.cookies.get("caravan_console_csrf")
    ok = anonymous.post(
        "/login", data={"token": settings.token, "_csrf_token": field}, follow_redirects=False
    )
    assert ok.status_code == 303


def test_a_bearer_token_works_for_scripts(anonymous: TestClient, settings: ConsoleSettings) -> None:
    assert anonymous.get("/plan", headers={"authorization": f"Bearer {settings.token}"}).status_code == 200


def test_actions_need_the_csrf_token(client: TestClient) -> None:
    refused = client.post("/programs/svc-b-1/restart")
    assert refused.status_code == 403
    assert client.post("/plan/stages/1/run", data={"mode": "deps"}).status_code == 403


def test_actions_need_a_login_even_with_a_csrf_token(anonymous: TestClient) -> None:
    headers = csrf(anonymous)
    assert anonymous.post("/programs/svc-b-1/restart", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/traces", "/traces"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        (None, "/"),
        ("/\\evil", "/"),
    ],
)
def test_after_login_the_console_only_goes_to_its_own_pages(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_another_host_name_is_refused(client: TestClient, settings: ConsoleSettings) -> None:
    """DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 sends its own Host."""
    assert client.get("/plan", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/plan", headers={"host": "evil.example:80"}).status_code == 400
    assert client.get("/plan", headers={"host": "localhost"}).status_code == 200
