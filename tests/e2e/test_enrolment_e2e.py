"""Enrolment end to end (issue 16), real server and headless Chromium: the registration desk
enrols a new racer in one step and prints a slip with the sign-in code and its QR code;
the timekeeper console's walk-up form enrols a racer who then appears in its racer list
without a reload."""

from __future__ import annotations

import re
import uuid
from datetime import date

from drem.demo.live_server import LiveServer
from tests.e2e.pages import login
from tests.e2e.timekeeper_helpers import make_event, open_console


def _enrolled(server: LiveServer, event_id: int) -> dict[str, dict]:
    resp = server.api("GET", f"/api/events/{event_id}", token=server.admin_token, timeout=10)
    resp.raise_for_status()
    return {r["username"]: r for r in resp.json()["racers"]}


def test_desk_slip_with_qr_and_walk_up_on_the_console(page, browser, live_server: LiveServer,
                                                      console_errors) -> None:
    event, track_id = make_event(live_server, date=date.today().isoformat())
    tag = uuid.uuid4().hex[:5]

    # the desk: one form creates, enrols (today's event is preselected) and prints the slip
    login(page, live_server.create_user("registration"))
    page.goto("/desk")
    assert page.input_value("#event_id") == str(event["id"])
    page.fill("#username", f"desk.{tag}")
    page.select_option("#country_code", "JP")
    with page.expect_navigation():
        page.click("#desk-form button[type=submit]")
    code = page.inner_text("#sign-in-code").strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    qr = page.locator(".slip .qr svg")
    assert qr.is_visible() and qr.bounding_box()["width"] > 100  # 40 mm on the slip
    assert _enrolled(live_server, event["id"])[f"desk.{tag}"]["country_code"] == "JP"

    # the console: a walk-up racer appears in the racer list and is picked, no reload
    operator = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        console = operator.new_page()
        console.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
        login(console, live_server.create_user("operator"))
        open_console(console, track_id)
        console.locator("#tk-racer option", has_text=f"desk.{tag}").wait_for(state="attached")
        console.click("#walkup summary")
        console.fill("#walkup-name", f"walk.{tag}")
        console.select_option("#walkup-country", "NG")
        console.click("#walkup-submit")
        console.locator("#walkup-message", has_text=f"walk.{tag} created and enrolled").wait_for()
        walk_up = _enrolled(live_server, event["id"])[f"walk.{tag}"]
        console.locator(f"#tk-racer option[value='{walk_up['user_id']}']").wait_for(state="attached")
        assert console.input_value("#tk-racer") == str(walk_up["user_id"])
        assert console.locator("#walkup-slip").is_visible()
        assert console.get_attribute("#walkup-slip", "action") == f"/desk/racers/{walk_up['user_id']}/code"
    finally:
        operator.close()
    assert console_errors == []
