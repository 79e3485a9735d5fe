"""Race queue end to end (real gunicorn + gevent server, headless Chromium): a racer
checks in from a phone-sized window (390x844) on the event's landing page, picking their
model, and appears at once as next on the operator's console (the set-up form preselected
with racer and model) and in "Next up" on the big screen."""

from __future__ import annotations

import uuid
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


def test_console_open_before_the_racers_exist_keeps_up_with_desk_queue_and_walk_up(
        page, live_server: LiveServer, console_errors, tmp_path: Path) -> None:
    """The seams between the console's racer list (timekeeper.js), the queue panel
    (race_queue.js) and the walk-up form (walkup.js), on a console opened before any racer:
    a racer enrolled and checked in since then is preselected with the model uploaded since
    then; a racer enrolled at the desk since then is in "Add racer"; and a walk-up racer
    the operator enrolled stays picked when the queue changes afterwards."""
    event, track_id = make_event(live_server)
    login(page, live_server.create_user("operator"))
    page.goto(f"/timekeeper/tracks/{track_id}")
    page.locator("#rq-next", has_text="nobody checked in").wait_for()

    first = live_server.create_user("racer")
    register(live_server, event, first)
    model = upload_model(live_server, first, f.deepracer_tar_gz(tmp_path, "late.tar.gz"))
    entry = live_server.api("POST", "/api/me/queue", token=first["token"], json={"track_id": track_id}).json()
    resp = live_server.api("POST", f"/api/me/queue/{entry['entry_id']}/check-in", token=first["token"],
                           json={"model_id": model["id"]})
    assert resp.status_code == 200, resp.text
    page.wait_for_function("([r, m]) => document.getElementById('tk-racer').value === r"
                           " && document.getElementById('tk-model').value === m",
                           arg=[str(first["id"]), str(model["id"])])

    at_desk = f"desk{uuid.uuid4().hex[:6]}"  # enrolled at the desk: no phone, the operator queues them
    resp = live_server.api("POST", f"/api/events/{event['id']}/enrol", token=live_server.admin_token,
                           json={"username": at_desk, "country_code": "BE"})
    assert resp.status_code == 201, resp.text
    desk_id = str(resp.json()["racer"]["id"])
    walk_up = f"walk{uuid.uuid4().hex[:6]}"
    page.click("#walkup summary")
    page.fill("#walkup-name", walk_up)
    page.select_option("#walkup-country", "NG")
    page.click("#walkup-submit")
    page.locator("#walkup-message", has_text="created and enrolled").wait_for()
    picked = "document.getElementById('tk-racer').selectedOptions[0].textContent"
    page.wait_for_function(f"(n) => {picked}.startsWith(n + ' ')", arg=walk_up)

    page.focus("#rq-add-racer")  # opening the list reads the racers again
    page.select_option("#rq-add-racer", desk_id)
    page.click("#rq-add")
    page.locator("#rq-table tbody tr", has_text=at_desk).wait_for()  # a queue update arrived
    assert page.evaluate(picked).startswith(walk_up + " ")  # still the operator's pick
    assert page.locator("#rq-next", has_text=first["username"]).count() == 1
    assert console_errors == []
