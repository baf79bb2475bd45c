"""The console in a real browser against a running system: the suites' system (tests/system.py),
`invoke console` serving it as a user runs it, and Debian's Chromium driven by Playwright for
Python (its executable path; Playwright never downloads a browser here). Screenshots of every
page land in the state folder's reports (not in git): ``<state>/reports/console/``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from system import ROOT, System

from caravan_workspace import paths
from caravan_workspace.runtime.supervisor import free_port

CHROMIUM = os.environ.get("CARAVAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(
    os.environ.get("CARAVAN_CONSOLE_SCREENSHOTS", paths.state_dir(ROOT) / "reports" / "console")
)


@pytest.fixture(scope="session")
def console_url(system: System) -> Iterator[str]:
    """`invoke console` on the system's state folder; yields its login link."""
    port = free_port()
    env = {**os.environ, "CARAVAN_STATE_DIR": str(system.state_dir), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "console", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        login = ""
        assert process.stdout is not None
        for line in process.stdout:
            match = re.match(r"open: (http://127\.0\.0\.1:\d+/login\?token=\S+)", line)
            if match:
                login = match.group(1)
                break
        assert login, "invoke console printed no login link"
        deadline = time.monotonic() + 30
        import httpx

        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the console did not answer within 30 s"
            time.sleep(0.2)
        yield login
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CARAVAN_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, console_url: str) -> Iterator[Page]:
    """A logged-in page (through the printed link, as a user opens it)."""
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(console_url)
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
