"""Issue 16's race day, end to end and only through pages (real gunicorn + gevent server,
real clamd, headless Chromium): the admin creates the event, the registration desk enrols a
new racer and prints the slip, the racer signs in with the slip's code on a phone-sized
window, chooses a password, uploads a model, joins the race queue and checks in; the
operator's console (open since before the racer existed) preselects them as next and the
big screen shows them under "Next up"; the operator runs a hand-timed race, reviews it
(one lap invalid, +2 s "cone" on another) and submits; the big screen ranks the racer with
the penalised time, the queue is done with them and their phone shows the result.

The API is only read, to check what the pages did."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from drem.demo.live_server import LiveServer
from tests.e2e.pages import login
from tests.e2e.timekeeper_helpers import LAP_GAP_S, open_console, wait_status
from tests.models_mgr import factories as f

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _context(browser: Any, server: LiveServer, errors: list[str], who: str, **options: Any) -> Any:
    """A browser context of its own (one person's device) whose page errors are recorded."""
    context = browser.new_context(base_url=server.url, **({"viewport": {"width": 1280, "height": 900}} | options))
    context.set_default_timeout(15_000)
    context.on("page", lambda pg: pg.on("pageerror", lambda exc: errors.append(f"{who} uncaught: {exc}")))
    return context


def _fits(pg: Any) -> bool:
    return pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _hand_timed_lap(console: Any, n: int) -> None:
    """Press Space once the console's current-lap clock shows more than the operator
    debounce (two presses closer than 1.5 s are one crossing), then wait for lap ``n``."""
    console.wait_for_function("(s) => { const m = /^(?:(\\d+):)?(\\d+)\\.(\\d)$/.exec("
                              "document.getElementById('tk-current').textContent.trim());"
                              " return m && (+(m[1] || 0) * 60 + +m[2] + m[3] / 10) >= s; }", arg=LAP_GAP_S)
    console.keyboard.press(" ")
    console.locator("#tk-laps tbody tr").nth(n - 1).wait_for()


def test_a_racer_goes_from_the_desk_to_the_podium_through_pages_only(
        page, browser, live_server: LiveServer, console_errors, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:5]
    name, event_name = f"jo.{tag}", f"Race day {tag}"
    model_file = f.deepracer_tar_gz(tmp_path, f"day-{tag}.tar.gz")

    # Before the day: the admin creates today's event (1 min races, one run per racer).
    login(page, {"username": live_server.admin_username, "password": live_server.admin_password})
    page.goto("/events/new")
    page.fill("#name", event_name)
    page.fill("#date", date.today().isoformat())
    page.fill("#race_time_min", "1")
    page.select_option("#ranking_method", "best_lap")
    page.fill("#max_runs_per_racer", "1")
    with page.expect_navigation():
        page.click("form.event-form button[type=submit]")
    event_id = int(re.search(r"/events/(\d+)", page.url).group(1))
    event = live_server.api("GET", f"/api/events/{event_id}", token=live_server.admin_token).json()
    track_id = event["tracks"][0]["id"]

    # The operator's console and the big screen are open all day, before the racer exists.
    operator = _context(browser, live_server, console_errors, "console")
    screen_ctx = _context(browser, live_server, console_errors, "screen", viewport={"width": 1920, "height": 1080})
    desk = _context(browser, live_server, console_errors, "desk")
    phone_ctx = _context(browser, live_server, console_errors, "phone", **PHONE)
    try:
        console = operator.new_page()
        login(console, live_server.create_user("operator"))
        open_console(console, track_id)
        console.locator("#rq-next", has_text="nobody checked in").wait_for()
        screen = screen_ctx.new_page()
        screen.goto(f"/events/{event_id}/leaderboard?track={track_id}")
        screen.locator("#lb-status", has_text="live").wait_for()

        # 1. The desk: create, enrol (today's event preselected) and print the slip.
        clerk = desk.new_page()
        login(clerk, live_server.create_user("registration"))
        clerk.goto("/desk")
        assert clerk.input_value("#event_id") == str(event_id)
        clerk.fill("#username", name)
        clerk.select_option("#country_code", "NL")
        with clerk.expect_navigation():
            clerk.click("#desk-form button[type=submit]")
        assert event_name in clerk.inner_text(".slip-event")
        code = clerk.inner_text("#sign-in-code").strip()
        assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
        qr = clerk.locator(".slip .qr svg")
        assert qr.is_visible() and qr.bounding_box()["width"] > 100

        # 2. The phone: the slip's link (what its QR code holds) fills in the code; sign in,
        #    choose a password, upload a model, join the queue and check in with it.
        phone = phone_ctx.new_page()
        phone.goto(f"/login?code={code}")
        phone.locator("#code-given").wait_for()
        with phone.expect_navigation():
            phone.get_by_role("button", name="Sign in").click()
        assert phone.url.endswith("/account"), phone.url
        phone.fill("#new_password", f"pw-{tag}-secret")
        with phone.expect_navigation():
            phone.get_by_role("button", name="Save password").click()
        assert "password changed" in phone.inner_text("main")
        phone.goto("/models/")
        assert phone.input_value("#upload-event") == str(event_id)
        phone.set_input_files("#file-input", str(model_file))
        item = phone.locator("#upload-list li", has_text=model_file.name)
        item.locator(".state", has_text="available").wait_for(timeout=30_000)
        model_id = item.get_attribute("data-model-id")
        phone.goto(f"/e/{event_id}")
        phone.get_by_role("button", name="Join the queue").click()
        phone.locator("#queue .queue-place", has_text="Place 1 in the queue").wait_for()
        phone.select_option("#queue select[name=model_id]", model_id)
        phone.get_by_role("button", name="Check in").click()
        phone.locator("#queue .queue-state", has_text="Checked in").wait_for()
        assert _fits(phone), "the landing page is wider than the phone"

        # 3. Next on the console (racer and model preselected) and under "Next up".
        console.locator("#rq-next", has_text=name).wait_for()
        console.wait_for_function("([n, m]) => { const r = document.getElementById('tk-racer');"
                                  " return r.selectedOptions.length && r.selectedOptions[0].textContent.startsWith(n + ' ')"
                                  " && document.getElementById('tk-model').value === m; }", arg=[name, model_id])
        assert console.locator("#rq-add-racer option", has_text=name).count() == 1
        screen.locator("#lb-next li", has_text=name).wait_for()

        # 4. A hand-timed race: set up, start, two laps, end; the review; submit.
        console.click("#tk-setup-btn")
        wait_status(console, "ready")
        phone.locator("#queue .queue-state", has_text="You are called").wait_for()
        console.keyboard.press("s")
        wait_status(console, "running")
        _hand_timed_lap(console, 1)
        _hand_timed_lap(console, 2)
        console.keyboard.press("x")
        wait_status(console, "ended")
        rows = console.locator("#tk-review-laps tbody tr")
        rows.nth(1).wait_for()
        lap2_ms = round(float(rows.nth(1).locator(".tk-rv-time").inner_text()) * 1000)
        rows.nth(0).locator(".tk-rv-valid").uncheck()             # lap 1 does not count
        console.locator("#tk-laps tbody tr.invalid").wait_for()    # saved: the server sent it back
        rows.nth(1).locator(".tk-rv-penalty").fill("2")          # +2 s, cone, on lap 2
        rows.nth(1).locator(".tk-rv-reason").fill("cone")
        rows.nth(1).locator(".tk-rv-reason").press("Enter")      # Enter in a field saves it
        console.wait_for_function("() => document.querySelector('#tk-review-laps tbody tr:nth-child(2)"
                                  " .tk-rv-penalty').value === '2'")
        console.click("#tk-review-submit")
        console.locator("#tk-setup").wait_for()

        # Read back what the pages did.
        races = live_server.api("GET", f"/api/events/{event_id}/races", token=live_server.admin_token).json()["races"]
        assert [(r["racer"], r["status"], r["model_id"]) for r in races] == [(name, "submitted", int(model_id))]
        final = races[0]
        assert [(lap["valid"], lap["penalty_ms"], lap["penalty_reason"]) for lap in final["laps"]] == [
            (False, 0, ""), (True, 2000, "cone")]
        assert final["laps"][1]["time_ms"] == lap2_ms
        result_ms = lap2_ms + 2000
        result = f"{result_ms // 1000}.{result_ms % 1000:03d}"

        # 5. The big screen ranks them with the penalty; the queue is done with them; their
        #    phone says so and shows the result.
        row = screen.locator("#lb-rows tr", has_text=name)
        row.locator(".c-value", has_text=result).wait_for()
        assert row.locator(".c-rank").inner_text().strip() == "1"
        assert row.locator(".c-value .penalty").inner_text() == "+2.000 s"
        screen.locator("#lb-next").wait_for(state="hidden")
        console.locator("#rq-next", has_text="nobody checked in").wait_for()
        assert console.locator("#rq-table tbody tr").count() == 0
        queue = live_server.api("GET", f"/api/tracks/{track_id}/queue", token=live_server.admin_token).json()
        assert queue["queue"]["entries"] == []
        phone.locator("#queue", has_text="No runs left on this track.").wait_for()
        phone.get_by_role("link", name="Track 1").click()
        mine = phone.locator("#lb-rows tr", has_text=name)
        mine.locator(".c-value", has_text=result).wait_for()
        assert mine.locator(".c-value .penalty").inner_text() == "+2.000 s"
        assert _fits(phone), "the leaderboard is wider than the phone"
    finally:
        for context in (operator, screen_ctx, desk, phone_ctx):
            context.close()
    assert console_errors == [], console_errors
