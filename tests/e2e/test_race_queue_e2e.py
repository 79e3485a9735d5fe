"""Race queue end to end (real gunicorn + gevent server, headless Chromium): a racer
checks in from a phone-sized window (390x844) on the event's landing page, picking their
model, and appears at once as next on the operator's console (the set-up form preselected
with racer and model) and in "Next up" on the big screen."""

from __future__ import annotations

from pathlib import Path

from drem.demo.live_server import LiveServer
from tests.e2e.fleet_harness import upload_model
from tests.e2e.pages import login
from tests.e2e.timekeeper_helpers import make_event, register
from tests.models_mgr import factories as f


def test_racer_checks_in_from_a_phone_and_is_next_on_console_and_big_screen(
        page, browser, live_server: LiveServer, console_errors, tmp_path: Path) -> None:
    operator = live_server.create_user("operator")
    racer = live_server.create_user("racer")
    event, track_id = make_event(live_server)
    register(live_server, event, racer)
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "queue-fast.tar.gz"))

    # the operator's console and the big screen watch the track
    login(page, operator)
    page.goto(f"/timekeeper/tracks/{track_id}")
    page.locator("#rq-next", has_text="nobody checked in").wait_for()
    page.locator(f"#tk-racer option[value='{racer['id']}']").wait_for(state="attached")
    screen = page.context.new_page()
    screen.goto(f"/events/{event['id']}/leaderboard?track={track_id}")

    # the racer's phone
    phone_context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                        is_mobile=True, has_touch=True)
    phone_context.set_default_timeout(15_000)
    phone = phone_context.new_page()
    phone.on("pageerror", lambda exc: console_errors.append(f"phone uncaught: {exc}"))
    try:
        login(phone, racer)
        phone.goto(f"/e/{event['id']}")
        phone.get_by_role("button", name="Join the queue").click()
        phone.locator("#queue .queue-place", has_text="Place 1 in the queue").wait_for()
        phone.select_option("#queue select[name=model_id]", str(model["id"]))
        phone.get_by_role("button", name="Check in").click()
        phone.locator("#queue .queue-state", has_text="Checked in").wait_for()
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than the phone"

        # next on the console, with racer and model preselected; next up on the big screen
        page.locator("#rq-next", has_text=racer["username"]).wait_for()
        page.wait_for_function("([r, m]) => document.getElementById('tk-racer').value === r"
                               " && document.getElementById('tk-model').value === m",
                               arg=[str(racer["id"]), str(model["id"])])
        screen.locator("#lb-next li", has_text=racer["username"]).wait_for()

        # the operator calls them: the phone says so, live
        page.click("#rq-call-next")
        phone.locator("#queue .queue-state", has_text="You are called").wait_for()
        screen.locator("#lb-next li[data-state=called]", has_text=racer["username"]).wait_for()
    finally:
        phone_context.close()
    assert not console_errors, console_errors
