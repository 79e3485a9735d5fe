"""Fixtures for end-to-end tests: a live server (real gunicorn + gevent, real clamd) and
a headless Chromium page that records console errors.

* ``live_server`` - one server per test module (starting one takes about 3 s); tests
  create their own users, so they do not depend on each other.
* ``live_server_factory`` - start extra servers with other settings in a test;
  all are stopped at the end of the test.
* ``browser`` - one headless Debian Chromium per session (sync Playwright).
* ``page`` - a fresh browser context and page per test, its base URL the module's
  live server when the test uses ``live_server``; ``console_errors`` lists what the
  page logged as errors (console errors and uncaught exceptions), so a test can
  assert that nothing went wrong.

On PostgreSQL runs (``DATABASE_URL`` set, as ``make test-postgres`` does) each live
server gets its own fresh database next to it, and ``TEST_REDIS_URL`` becomes its
``REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drem.demo.live_server import LiveServer, fresh_postgres_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@contextlib.contextmanager
def _server(instance: Path, clamd_url: str, **kwargs: Any) -> Iterator[LiveServer]:
    base = os.environ.get("DATABASE_URL", "")
    with contextlib.ExitStack() as stack:
        if base and "database_url" not in kwargs:
            kwargs["database_url"] = stack.enter_context(fresh_postgres_database(base))
        if os.environ.get("TEST_REDIS_URL"):
            kwargs.setdefault("redis_url", os.environ["TEST_REDIS_URL"])
        server = LiveServer(instance, clamd_url=clamd_url, **kwargs)
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture(scope="module")
def live_server(clamd_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running drem (gunicorn + gevent) on the session's clamd, SQLite in its own
    instance folder (or a fresh PostgreSQL database), default settings."""
    with _server(tmp_path_factory.mktemp("live") / "instance", clamd_url) as server:
        yield server


@pytest.fixture
def live_server_factory(clamd_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``make(**LiveServer kwargs)`` starts another live server (session clamd unless
    ``clamd_url`` is given); each is stopped when the test ends."""
    with contextlib.ExitStack() as stack:
        count = 0

        def make(**kwargs: Any) -> LiveServer:
            nonlocal count
            count += 1
            url = kwargs.pop("clamd_url", clamd_url)
            return stack.enter_context(_server(tmp_path / f"instance{count}", url, **kwargs))

        yield make


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by sync Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught page exceptions seen by ``page`` (filled while the test runs)."""
    return []


@pytest.fixture
def page(browser: Any, console_errors: list[str], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new page in a fresh context (no cookies). When the test also uses ``live_server``
    its URL is the page's base URL (``page.goto("/login")``); a test that brings its own
    server passes full URLs and starts no module server. Every console error and
    uncaught exception is appended to ``console_errors``."""
    base_url = request.getfixturevalue("live_server").url if "live_server" in request.fixturenames else None
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()

    def on_console(msg: Any) -> None:
        # The browser's own request for /favicon.ico (drem has no favicon yet) is not an
        # error of the page; every other console error is recorded.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            console_errors.append(f"console.{msg.type}: {msg.text} ({msg.location})")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
    try:
        yield pg
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the live server's log tail to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        server = getattr(item, "funcargs", {}).get("live_server")
        if isinstance(server, LiveServer):
            report.sections.append(("live server log (tail)", server.log_tail(80)))
