"""Helpers of the timekeeper end-to-end tests (server, console page, clock checks)."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import requests

from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until
from tests.e2e.pages import login  # noqa: F401 - the timekeeper tests take it from here

QUICK = os.environ.get("DREM_QUICK") == "1"
OFFLINE_S = float(os.environ.get("DREM_TK_OFFLINE_S") or (5 if QUICK else 30))
CLOCK_TOLERANCE_MS = 500
LAP_GAP_S = 1.7  # the server takes two operator laps closer than 1.5 s as one crossing


# ------------------------------------------------------------------------ helpers


def make_event(server: LiveServer, **config: Any) -> tuple[dict, int]:
    """An event with one track on ``reinvent_base`` (race config from ``config``)."""
    body = {"name": f"TK e2e {uuid.uuid4().hex[:6]}", "date": "2026-11-22",
            "tracks": [{"name": "Track 1", "layout": "reinvent_base"}], "race_time_min": 3} | config
    resp = server.api("POST", "/api/events", token=server.admin_token, json=body)
    assert resp.status_code == 201, resp.text[:300]
    event = resp.json()
    return event, event["tracks"][0]["id"]


def register(server: LiveServer, event: dict, user: dict) -> None:
    resp = server.api("POST", f"/api/events/{event['id']}/racers", token=server.admin_token,
                      json={"user_id": user["id"]})
    assert resp.status_code == 201, resp.text[:300]


def race_setup(server: LiveServer) -> dict:
    """An operator, a registered racer and an event track on ``server``."""
    operator = server.create_user("operator")
    racer = server.create_user("racer")
    event, track_id = make_event(server)
    register(server, event, racer)
    return {"operator": operator, "racer": racer, "event": event, "track_id": track_id}


def state(server: LiveServer, race_id: int, token: str | None = None) -> dict:
    resp = server.api("GET", f"/api/races/{race_id}", token=token or server.admin_token, timeout=10)
    resp.raise_for_status()
    return resp.json()


def live(server: LiveServer, track_id: int) -> dict | None:
    resp = server.api("GET", f"/api/tracks/{track_id}/live", token=server.admin_token, timeout=10)
    resp.raise_for_status()
    return resp.json()["race"]


def post(server: LiveServer, token: str, path: str, body: dict | None = None) -> requests.Response:
    return server.api("POST", path, token=token, json=body if body is not None else {}, timeout=30)


def parse_clock(text: str) -> int:
    """The console's clock text (``m:ss.t`` or ``s.t``) in ms."""
    match = re.fullmatch(r"(?:(\d+):)?(\d+)\.(\d)", text.strip())
    assert match, f"not a clock: {text!r}"
    minutes, seconds, tenths = match.groups()
    return (int(minutes or 0) * 60 + int(seconds)) * 1000 + int(tenths) * 100


def open_console(page: Any, track_id: int) -> None:
    page.goto(f"/timekeeper/tracks/{track_id}")
    wait_connected(page)


def wait_connected(page: Any, timeout_ms: int = 15_000) -> None:
    page.locator("#tk-connection", has_text="live").wait_for(timeout=timeout_ms)


def console_laps(page: Any) -> list[tuple[int, str, int, str, str]]:
    """The console's lap table, first lap first: (number, time, resets, source, valid)."""
    rows = page.eval_on_selector_all(
        "#tk-laps tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    return [(int(n), t, int(r), s, v) for n, t, r, s, v in reversed(rows)]


def api_laps(st: dict) -> list[tuple[int, str, int, str, str]]:
    """The same table made from a race state (what the console must show)."""
    out = []
    limit = st["resets_allowed_per_lap"]
    for lap in st["laps"]:
        valid = not lap["invalidated"] and not lap["dnf"] and (limit is None or lap["resets"] <= limit)
        out.append((lap["lap_number"], f"{lap['time_ms'] / 1000:.3f}", lap["resets"], lap["source"],
                    "yes" if valid else ("DNF" if lap["dnf"] else "no")))
    return out


def wait_console_laps(page: Any, server: LiveServer, race_id: int, timeout: float = 15) -> list:
    """Wait until the console's lap table equals the server's laps; returns them."""
    def same() -> list | None:
        expected = api_laps(state(server, race_id))
        return expected if console_laps(page) == expected else None

    return wait_until(same, timeout, interval_s=0.1, what="the console to show the server's laps",
                      on_timeout=lambda: f"console {console_laps(page)}\nserver {api_laps(state(server, race_id))}")


def check_clock(page: Any, server: LiveServer, race_id: int) -> dict:
    """The console's "time left" is within CLOCK_TOLERANCE_MS of the server's race clock
    (the server's answer carried forward to the moment the page was read)."""
    st = state(server, race_id)
    shown, page_now = page.evaluate(
        "() => [document.getElementById('tk-time-left').textContent, Date.now() / 1000]")
    expected = st["time_left_ms"]
    if st["status"] == "running":
        expected -= (page_now - st["server_time"]) * 1000
    assert abs(parse_clock(shown) - expected) <= CLOCK_TOLERANCE_MS, (shown, expected, st)
    return st


def console_status(page: Any) -> str:
    return page.inner_text("#tk-status").strip()


def wait_status(page: Any, status: str, timeout_ms: int = 10_000) -> None:
    page.locator("#tk-status", has_text=status).wait_for(timeout=timeout_ms)


def press(page: Any, key: str) -> None:
    page.keyboard.press(key)


def network_errors_only(errors: list[str]) -> list[str]:
    """Console errors that are not the browser reporting a dropped connection (expected
    while the server is down or the browser is offline)."""
    noise = ("ERR_CONNECTION_REFUSED", "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_RESET",
             "WebSocket connection to", "Failed to load resource", "ERR_EMPTY_RESPONSE",
             "ERR_NETWORK_CHANGED")
    return [e for e in errors if not any(n in e for n in noise)]
