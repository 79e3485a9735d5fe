"""The big screen and the stream overlay in headless Chromium against the real server
(gunicorn + gevent): a race runs through the timekeeper API, each lap appears on the
leaderboard page within a second, and screenshots of both pages are taken and checked
(the DOM at screenshot time holds the racer's name and lap time)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.leaderboard_race import RaceDriver


def fmt(ms: int) -> str:
    """A lap time as the pages show it: 9123 -> "9.123", 83456 -> "1:23.456"."""
    minutes, rest = divmod(ms, 60_000)
    sec, milli = divmod(rest, 1000)
    return (f"{minutes}:{sec:02d}" if minutes else str(sec)) + f".{milli:03d}"


SHOWN = """([racerId, text]) => {
  const cell = document.querySelector(`#lb-rows tr[data-racer-id="${racerId}"] .c-value`);
  return cell !== null && cell.textContent === text;
}"""


def _screenshot(page, path: Path) -> str:
    """Take a screenshot and return the page's visible text at that moment."""
    page.screenshot(path=str(path))
    text = page.inner_text("body")
    assert path.stat().st_size > 5_000  # a real picture, not an empty page
    return text


def test_big_screen_and_overlay_follow_a_live_race(page, live_server, console_errors, tmp_path):
    drv = RaceDriver(live_server)
    event = drv.event(tracks=2)
    track = event["tracks"][0]["id"]
    rival = drv.racer(event["id"], country_code="GB")
    racer = drv.racer(event["id"], country_code="DE")

    rival_race = drv.start(track, rival["id"])  # rival: one slow lap of about 3 s, submitted
    time.sleep(3.0)
    rival_lap = drv.lap(rival_race["race_id"])
    drv.finish(rival_race["race_id"])

    page.goto(f"/events/{event['id']}/leaderboard?track={track}")
    page.wait_for_selector("#lb-status.live")
    assert page.inner_text("#lb-title") == "Grand Prix 1"
    assert page.inner_text("#lb-footer") == "Powered by drem"
    page.wait_for_function(SHOWN, arg=[rival["id"], fmt(rival_lap["time_ms"])])
    assert page.eval_on_selector(".lb-qr img", "img => img.naturalWidth") > 0  # the QR code shows

    overlay = page.context.new_page()
    overlay.goto(f"/events/{event['id']}/overlay?track={track}&bg=green")
    overlay.wait_for_selector("#ov-top:not([hidden])")  # no race: the top N

    race = drv.start(track, racer["id"], raced_by_proxy=True)
    page.wait_for_selector(f"#lb-race .name:text-is('{racer['username']}')")  # live race footer
    page.wait_for_selector(f"#lb-rows tr[data-racer-id='{racer['id']}']")  # on the board, no time yet
    overlay.wait_for_selector(f"#ov-third .name:text-is('{racer['username']}')")  # lower third

    laps = []
    for wait_s in (1.1, 1.6):  # a simulated race: the operator presses "lap" twice
        time.sleep(wait_s)
        t0 = time.monotonic()
        lap = drv.lap(race["race_id"])
        page.wait_for_function(SHOWN, arg=[racer["id"], fmt(min(x["time_ms"] for x in [*laps, lap]))],
                               timeout=1000, polling="raf")
        assert time.monotonic() - t0 < 1.0, "the lap took a second or more to reach the big screen"
        laps.append(lap)

    best = min(x["time_ms"] for x in laps)
    # big screen: new leader on top (marked), proxy marker, flag, gap of the rival
    text = _screenshot(page, tmp_path / "leaderboard.png")
    assert racer["username"] in text and fmt(best) in text
    top = page.locator("#lb-rows tr.top1")
    assert top.get_attribute("data-racer-id") == str(racer["id"])
    assert top.locator(".proxy").count() == 1
    assert top.locator("img.flag").get_attribute("src") == "/vendor/flags/de.svg"
    assert page.eval_on_selector("#lb-rows tr.top1 img.flag", "img => img.naturalWidth") > 0
    assert page.locator(f"#lb-rows tr[data-racer-id='{rival['id']}'] .c-gap").inner_text() == \
        "+" + fmt(rival_lap["time_ms"] - best)
    assert page.locator("#lb-race .left b").inner_text() != ""
    assert page.locator("#lb-race .laps b").inner_text() == "2"  # the footer counts the race's laps
    assert overlay.inner_text("#ov-laps") == "2"

    # overlay lower third: last and best lap, the best coloured as the event best
    overlay.wait_for_function("t => document.getElementById('ov-last').textContent === t",
                              arg=fmt(laps[-1]["time_ms"]), timeout=2000)
    text = _screenshot(overlay, tmp_path / "overlay-race.png")
    assert racer["username"] in text and fmt(laps[-1]["time_ms"]) in text and fmt(best) in text
    assert "event-best" in overlay.get_attribute("#ov-best", "class")

    # switches: language and layout
    page.select_option("#sel-lang", "de")
    assert page.inner_text("th.c-racer") == "Fahrer" and page.inner_text("#th-value") == "Beste Runde"
    page.select_option("#sel-layout", "compact")
    assert not page.locator("#lb-rows td.c-gap").first.is_visible()
    assert "lang=de" in page.url and "layout=compact" in page.url

    # between races the overlay shows the top N with the gap to the leader
    drv.finish(race["race_id"])
    overlay.wait_for_selector("#ov-top:not([hidden])")
    page.wait_for_selector("#lb-race", state="hidden")
    text = _screenshot(overlay, tmp_path / "overlay-top.png")
    assert racer["username"] in text and fmt(best) in text and rival["username"] in text
    assert "+" + fmt(rival_lap["time_ms"] - best) in text

    # the track switch: the combined board of both tracks holds the same two racers
    page.select_option("#sel-track", "combined")
    page.wait_for_function(SHOWN, arg=[racer["id"], fmt(best).replace(".", ",")])  # German: decimal comma
    page.wait_for_function("document.getElementById('lb-sub').textContent.startsWith('Gesamt')")
    assert page.inner_text("#lb-sub").startswith("Gesamt")
    assert console_errors == []


def test_landing_page_and_qr_code(page, live_server, console_errors):
    drv = RaceDriver(live_server)
    event = drv.event(tracks=2, landing_links=[{"title": "Live stream", "url": "https://example.org/live"}])
    page.goto(f"/e/{event['id']}")
    assert page.inner_text("h1") == event["name"]
    assert page.locator("a", has_text="Live stream").get_attribute("href") == "https://example.org/live"
    assert page.locator("#how-to-upload").is_visible()
    assert page.locator("a.button", has_text="Combined").count() == 1
    assert page.eval_on_selector(".card img[alt^='QR']", "img => img.naturalWidth") > 0
    qr = drv.server.api("GET", f"/events/{event['id']}/qr.svg")
    assert qr.status_code == 200 and qr.headers["Content-Type"].startswith("image/svg+xml")
    assert console_errors == []
