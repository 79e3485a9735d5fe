"""Timekeeper end to end (1/2): the real server under gunicorn + gevent and the console
in headless Chromium.

1. A whole race with the keyboard only, with a page reload mid-race (same clock, same laps);
   keys pressed while a button has the focus do one thing only, and a late answer never
   rolls the console back to an older state.
2. The server killed with ``kill -9`` mid-race and restarted: the clock (server wall time)
   includes the downtime, no lap is lost, the console reconnects by itself.

The car and fault cases are in ``test_timekeeper_faults_e2e.py``.
"""

from __future__ import annotations

import time

from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until
from tests.e2e.timekeeper_helpers import (
    LAP_GAP_S,
    check_clock,
    live,
    login,
    network_errors_only,
    open_console,
    post,
    press,
    race_setup,
    state,
    wait_connected,
    wait_console_laps,
    wait_status,
)

# ------------------------------------------------------- 1. a keyboard race + reload


def test_whole_race_with_the_keyboard_and_a_reload(page, live_server: LiveServer, console_errors) -> None:
    s = race_setup(live_server)
    login(page, s["operator"])
    open_console(page, s["track_id"])
    page.locator("#tk-setup").wait_for()
    page.locator(f"#tk-racer option[value='{s['racer']['id']}']").wait_for(state="attached")
    page.select_option("#tk-racer", str(s["racer"]["id"]))
    assert page.input_value("#tk-car") == ""  # no car: manual laps
    page.click("#tk-setup-btn")
    wait_status(page, "ready")
    race = live(live_server, s["track_id"])
    rid = race["race_id"]
    assert race["racer"]["id"] == s["racer"]["id"] and race["operator_id"] == s["operator"]["id"]

    press(page, "s")
    wait_status(page, "running")
    time.sleep(LAP_GAP_S)
    press(page, " ")                                   # lap 1
    page.locator("#tk-laps tbody tr").nth(0).wait_for()
    for key in ("r", "r", "e"):                        # resets: +1 +1 -1
        press(page, key)
    page.locator("#tk-resets", has_text="1").wait_for()
    wait_until(lambda: state(live_server, rid)["current_resets"] == 1, 10, what="one reset on the server")
    time.sleep(LAP_GAP_S)
    press(page, " ")                                   # lap 2 with one reset
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 2, 10, what="lap 2")
    wait_console_laps(page, live_server, rid)
    press(page, "u")                                   # undo false finish: lap 2 goes
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 1, 10, what="undo")
    page.locator("#tk-resets", has_text="1").wait_for()  # its reset comes back to the running lap
    wait_console_laps(page, live_server, rid)
    press(page, "p")
    wait_status(page, "paused")
    paused = check_clock(page, live_server, rid)
    time.sleep(0.6)
    assert abs(state(live_server, rid)["elapsed_ms"] - paused["elapsed_ms"]) <= 5  # frozen
    press(page, "p")
    wait_status(page, "running")

    # reload mid-race: the same clock and the same laps
    page.evaluate("window.__before_reload = true")
    page.reload()
    wait_connected(page)
    wait_status(page, "running")
    assert page.evaluate("window.__before_reload") is None
    check_clock(page, live_server, rid)
    time.sleep(0.5)
    check_clock(page, live_server, rid)                # and it keeps running in step
    laps_before = wait_console_laps(page, live_server, rid)
    assert [lap[:3] for lap in laps_before] == [(1, laps_before[0][1], 0)]
    assert page.inner_text("#tk-resets") == "1"

    time.sleep(0.3)
    press(page, " ")                                   # lap 2 again, after the reload
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 2, 10, what="lap 2 after the reload")
    press(page, "x")
    wait_status(page, "ended")
    ended = check_clock(page, live_server, rid)
    wait_console_laps(page, live_server, rid)
    press(page, "Enter")
    page.locator("#tk-setup").wait_for()               # the track is free again
    assert live(live_server, s["track_id"]) is None

    final = state(live_server, rid, s["operator"]["token"])
    assert final["status"] == "submitted"
    assert [(lap["lap_number"], lap["resets"], lap["source"], lap["invalidated"]) for lap in final["laps"]] == [
        (1, 0, "operator", False), (2, 1, "operator", False)]
    assert all(lap["time_ms"] >= LAP_GAP_S * 1000 - 50 for lap in final["laps"]), final["laps"]
    # lap 2 ran from lap 1 through the undone lap (>= LAP_GAP_S), the pause (excluded) and the
    # reload (>= 0.8 s of sleeps after the resume)
    assert final["laps"][1]["time_ms"] >= LAP_GAP_S * 1000 + 800
    assert final["elapsed_ms"] == ended["elapsed_ms"]
    assert sum(lap["time_ms"] for lap in final["laps"]) <= final["elapsed_ms"]
    races = live_server.api("GET", f"/api/events/{s['event']['id']}/races", token=s["operator"]["token"]).json()
    assert [r["id"] for r in races["races"]] == [rid]  # one race, no duplicate from the submit
    assert console_errors == []



SLOW_FIRST_RESET = """
(() => {
  // The answer to the first reset press arrives late (a slow network), after the answer to
  // the second press and after the pushed state: the console must not go back to it.
  // window.__lateResetHandled turns true in the task after the console has read that answer.
  const fetch0 = window.fetch.bind(window);
  let resets = 0;
  window.fetch = async (url, opts) => {
    const resp = await fetch0(url, opts);
    if (String(url).endsWith("/resets") && ++resets === 1) {
      await new Promise(r => setTimeout(r, 1500));
      const json0 = resp.json.bind(resp);
      resp.json = async () => {
        const data = await json0();
        setTimeout(() => { window.__lateResetHandled = true; }, 0);
        return data;
      };
    }
    return resp;
  };
})();
"""

COUNT_REQUESTS = """
(() => {
  // window.__requests: the console's requests sent and answered (an answer counts once the
  // server has handled the request), and the paths asked for, in order.
  window.__requests = {sent: 0, answered: 0, paths: []};
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (url, opts) => {
    window.__requests.sent++;
    window.__requests.paths.push(new URL(String(url), location.href).pathname);
    try { return await fetch0(url, opts); } finally { window.__requests.answered++; }
  };
})();
"""


def requests_answered(page) -> list[str]:
    """Wait until the server has answered every request the console sent; their paths.
    What a key press sends is sent during the press, so after this no answer to it is
    still on its way."""
    page.wait_for_function("window.__requests.sent === window.__requests.answered", timeout=10_000)
    return page.evaluate("window.__requests.paths")


def test_console_keys_after_a_click_and_late_answers(page, live_server: LiveServer, console_errors) -> None:
    s = race_setup(live_server)
    op = s["operator"]["token"]
    page.add_init_script(SLOW_FIRST_RESET)
    page.add_init_script(COUNT_REQUESTS)
    login(page, s["operator"])
    rid = post(live_server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"]}).json()[
        "race_id"]
    open_console(page, s["track_id"])
    wait_status(page, "ready")
    page.click("button[data-act=start]")               # the mouse, then the keyboard
    wait_status(page, "running")
    press(page, "r")
    press(page, "r")
    wait_until(lambda: state(live_server, rid)["current_resets"] == 2, 10, what="two resets")
    page.wait_for_function("window.__lateResetHandled === true", timeout=10_000)  # the late answer is in
    assert page.inner_text("#tk-resets") == "2"

    page.click("button[data-act='reset+']")            # focus stays on "Reset +1"
    wait_until(lambda: state(live_server, rid)["current_resets"] == 3, 10, what="three resets")
    time.sleep(LAP_GAP_S)
    sent_before = len(requests_answered(page))
    press(page, " ")                                   # a lap, and only a lap
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 1, 10, what="lap 1")
    assert requests_answered(page)[sent_before:] == [f"/api/races/{rid}/laps"]  # no reset from the focus
    press(page, "p")
    wait_status(page, "paused")
    requests_answered(page)
    st = state(live_server, rid)
    assert st["current_resets"] == 0 and st["laps"][0]["resets"] == 3, st
    assert page.inner_text("#tk-resets") == "0"
    page.click("button[data-act=pause]")               # resume with the mouse, focus on the button
    wait_status(page, "running")
    sent_before = len(requests_answered(page))
    press(page, "Enter")                               # Enter submits only in the review: nothing here
    press(page, "r")                                   # the next key's request comes right after
    wait_until(lambda: state(live_server, rid)["current_resets"] == 1, 10, what="a reset after Enter")
    assert requests_answered(page)[sent_before:] == [f"/api/races/{rid}/resets"]  # no submit, no click
    assert state(live_server, rid)["status"] == "running"  # not paused again by the focused button
    assert page.locator("#tk-review").is_hidden()
    post(live_server, op, f"/api/races/{rid}/discard")
    page.locator("#tk-setup").wait_for()
    assert console_errors == []


# ------------------------------------------------------- review after End (issue 16)


def test_review_marks_a_lap_invalid_and_a_penalty_then_the_board_shows_it(page, live_server: LiveServer,
                                                                          console_errors) -> None:
    s = race_setup(live_server)
    op = s["operator"]["token"]
    login(page, s["operator"])
    rid = post(live_server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"]}).json()[
        "race_id"]
    open_console(page, s["track_id"])
    wait_status(page, "ready")
    press(page, "s")
    wait_status(page, "running")
    for n in (1, 2):
        time.sleep(LAP_GAP_S)
        press(page, " ")
        wait_until(lambda n=n: len(state(live_server, rid)["laps"]) == n, 10, what=f"lap {n}")
    press(page, "x")                                   # the race ends: the review opens
    wait_status(page, "ended")
    review = page.locator("#tk-review")
    review.wait_for()
    rows = review.locator("#tk-review-laps tbody tr")
    rows.nth(1).wait_for()
    rows.nth(1).locator(".tk-rv-penalty").fill("2")    # +2 s cone on lap 2 (waits for its reason)...
    rows.nth(0).locator(".tk-rv-valid").focus()        # (leaving the field asks for the reason)
    rows.nth(0).locator(".tk-rv-valid").uncheck()      # ...while lap 1 is made not to count
    wait_until(lambda: state(live_server, rid)["laps"][0]["invalidated"], 10, what="lap 1 invalid")
    page.locator("#tk-review-laps tbody tr.invalid").wait_for()  # that state is shown: the "2" typed is kept
    assert rows.nth(1).locator(".tk-rv-penalty").input_value() == "2"
    rows.nth(1).locator(".tk-rv-reason").fill("cone")
    press(page, "Enter")                               # Enter in a field saves the field...
    wait_until(lambda: state(live_server, rid)["laps"][1]["penalty_ms"] == 2000, 10, what="the penalty")
    assert page.locator("#tk-laps tbody tr").nth(1).get_attribute("class") == "invalid"  # lap 1 (newest first)
    press(page, "Enter")                               # ...and outside one submits
    page.locator("#tk-setup").wait_for()

    final = state(live_server, rid, op)
    assert final["status"] == "submitted"
    assert [(lap["valid"], lap["penalty_ms"], lap["penalty_reason"]) for lap in final["laps"]] == [
        (False, 0, ""), (True, 2000, "cone")]
    page.goto(f"/events/{s['event']['id']}/leaderboard?track={s['track_id']}")
    value = page.locator(f"#lb-rows tr[data-racer-id='{s['racer']['id']}'] .c-value")
    ms = final["laps"][1]["time_ms"] + 2000            # lap 2 with its penalty is the result
    value.filter(has_text=f"{ms // 1000}.{ms % 1000:03d}").wait_for()
    assert value.locator(".penalty").inner_text() == "+2.000 s"
    assert console_errors == []


# ------------------------------------------------------- 2. kill -9 mid-race


def test_server_killed_mid_race_resumes_with_the_right_clock(page, live_server: LiveServer,
                                                             console_errors) -> None:
    s = race_setup(live_server)
    op = s["operator"]["token"]
    login(page, s["operator"])
    open_console(page, s["track_id"])
    resp = post(live_server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"]})
    assert resp.status_code == 201, resp.text
    rid = resp.json()["race_id"]
    wait_status(page, "ready")                         # pushed to the open console
    press(page, "s")
    wait_status(page, "running")
    time.sleep(LAP_GAP_S)
    press(page, " ")
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 1, 10, what="lap 1")
    press(page, "r")
    wait_until(lambda: state(live_server, rid)["current_resets"] == 1, 10, what="a reset")
    before = state(live_server, rid)
    page.evaluate("window.__same_document = true")

    try:
        live_server.kill9()
        killed_at = time.time()
        page.locator("#tk-connection", has_text="reconnecting").wait_for(timeout=10_000)
        # a key pressed while the server is down is not lost silently: the console says so
        press(page, " ")
        page.locator("#tk-message", has_text="not sent").wait_for(timeout=10_000)
        time.sleep(max(0.0, 2.0 - (time.time() - killed_at)))
    finally:
        live_server.start()
    downtime = time.time() - killed_at

    after = state(live_server, rid)
    assert after["status"] == "running"
    # the race clock is server wall time: it ran on through the crash
    ran = after["elapsed_ms"] - before["elapsed_ms"]
    wall = (after["server_time"] - before["server_time"]) * 1000
    assert abs(ran - wall) <= 50 and ran >= downtime * 1000 - 50, (ran, wall, downtime)
    assert after["laps"] == before["laps"] and after["current_resets"] == 1
    assert after["current_lap_ms"] >= before["current_lap_ms"] + downtime * 1000 - 50

    # the console reconnects by itself (no reload) and shows the race again
    wait_connected(page, timeout_ms=30_000)
    assert page.evaluate("window.__same_document") is True
    wait_status(page, "running")
    check_clock(page, live_server, rid)
    wait_console_laps(page, live_server, rid)
    assert page.inner_text("#tk-resets") == "1"

    press(page, " ")                                   # the next lap includes the downtime
    wait_until(lambda: len(state(live_server, rid)["laps"]) == 2, 10, what="lap 2 after the restart")
    press(page, "x")
    wait_status(page, "ended")
    press(page, "Enter")
    page.locator("#tk-setup").wait_for()
    final = state(live_server, rid)
    assert final["status"] == "submitted" and len(final["laps"]) == 2
    assert final["laps"][1]["time_ms"] >= downtime * 1000 and final["laps"][1]["resets"] == 1
    assert final["laps"][0] == before["laps"][0]
    assert network_errors_only(console_errors) == []
