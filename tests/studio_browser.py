"""Browser-test fixtures for the studio: the server in a subprocess, and a Chromium page that fails
the test on any request beyond the studio's address, any console error and any page error.

Playwright's sync API runs an event loop while it is started, so the browser lives for one test
(``asyncio.run`` fails while it runs): make a test's data before asking for ``page``, or with the
CLI in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.servers import free_port, python_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


@pytest.fixture
def studio(home, tmp_path):
    """``modelatlas studio`` on a free 127.0.0.1 port, on the test's MODELATLAS_HOME; its base URL."""
    port = free_port()
    env = dict(os.environ, MODELATLAS_HOME=str(home))
    args = ["-m", "modelatlas", "studio", "--host", "127.0.0.1", "--port", str(port)]
    log = str(tmp_path / "studio.log")
    with python_server(args, port, ready_path="/favicon.ico", timeout=60, log_path=log, env=env):
        yield f"http://127.0.0.1:{port}"


def modelatlas(*args: str, home: Path) -> str:
    """Run the CLI in a subprocess on ``home`` (as a user would); its standard output."""
    env = dict(os.environ, MODELATLAS_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Watch:
    """What the page did that a test must not allow: foreign requests, console and page errors."""

    def __init__(self, origin: str):
        self.origin = origin
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []

    def route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if self.is_foreign(url):
            self.foreign.append(url)
            route.abort()
        else:
            route.continue_()

    def is_foreign(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return False
        return f"{parts.scheme}://{parts.netloc}" != self.origin

    def console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def page_error(self, error) -> None:
        self.errors.append(f"page error: {error}")


@pytest.fixture
def page(studio, request):
    """A headless Chromium page on the studio. At the end it saves a screenshot as a test artefact
    and fails the test on a request to any other address, a console error or a page error."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"needs {CHROMIUM} (make install-test installs Debian's chromium)")
    watch = Watch(studio)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(base_url=studio, viewport={"width": 1280, "height": 900})
        context.route("**/*", watch.route)
        tab = context.new_page()
        tab.on("console", watch.console)
        tab.on("pageerror", watch.page_error)
        tab.watch = watch
        try:
            yield tab
        finally:
            screenshot(tab, request.node.name)
            context.close()
            browser.close()
    assert not watch.foreign, f"requests left the studio's address: {watch.foreign}"
    assert not watch.errors, "errors in the browser:\n" + "\n".join(watch.errors)


def screenshot(page, name: str) -> Path:
    """Save the whole page as test-artifacts/screenshots/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
