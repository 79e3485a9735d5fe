"""Browser steps shared by the end-to-end tests (Playwright pages)."""

from __future__ import annotations

from typing import Any


def login(page: Any, user: dict) -> None:
    """Sign in through the real login form as ``user`` (``username``, ``password``);
    fails when the form comes back (wrong password, CSRF refused)."""
    page.goto("/login")
    page.fill("input[name=username]", user["username"])
    page.fill("input[name=password]", user["password"])
    with page.expect_navigation():
        page.click("form[action^='/login'] button[type=submit]")
    assert "/login" not in page.url, page.inner_text("main")
