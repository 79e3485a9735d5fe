"""Drive a race on a live drem server through its real HTTP API (events, racers,
timekeeper), for the leaderboard end-to-end tests and ``bench/leaderboard.py``.

No pytest imports here: ``bench/`` uses this module too.
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

from drem.demo.live_server import LiveServer

_seq = itertools.count(1)


class RaceDriver:
    """An admin driving events, racers and races on ``server`` (Bearer token)."""

    def __init__(self, server: LiveServer, token: str | None = None):
        self.server = server
        self.token = token or server.admin_token

    def call(self, method: str, path: str, expect: int | tuple = (200, 201), **kwargs: Any) -> Any:
        resp = self.server.api(method, path, token=self.token, **kwargs)
        ok = (expect,) if isinstance(expect, int) else expect
        if resp.status_code not in ok:
            raise AssertionError(f"{method} {path} -> {resp.status_code}: {resp.text[:400]}")
        return resp.json() if resp.content else None

    def event(self, tracks: int = 1, **fields: Any) -> dict:
        """A new event (best lap unless ``fields`` say otherwise) with ``tracks`` tracks."""
        data = {"name": f"Leaderboard test {next(_seq)}", "date": "2026-11-22",
                "tracks": [{"name": f"Track {i + 1}", "leaderboard_title": f"Grand Prix {i + 1}",
                            "leaderboard_footer": "Powered by drem"} for i in range(tracks)]}
        return self.call("POST", "/api/events", json=data | fields, expect=201)

    def racer(self, event_id: int, username: str | None = None, country_code: str = "DE") -> dict:
        """A racer account (registration desk API), registered for the event."""
        username = username or f"racer{os.getpid() % 1000}x{next(_seq)}"
        user = self.call("POST", "/api/racers", json={"username": username, "country_code": country_code},
                         expect=201)["user"]
        self.call("POST", f"/api/events/{event_id}/racers", json={"user_id": user["id"]}, expect=201)
        return user

    def start(self, track_id: int, racer_id: int, raced_by_proxy: bool = False) -> dict:
        """Set up and start a race; returns its race state."""
        race = self.call("POST", "/api/races", json={"track_id": track_id, "racer_id": racer_id,
                                                     "raced_by_proxy": raced_by_proxy}, expect=201)
        return self.call("POST", f"/api/races/{race['race_id']}/start")

    def lap(self, race_id: int) -> dict:
        """The operator presses "lap" now (the lap time is the race clock since the last lap)."""
        return self.call("POST", f"/api/races/{race_id}/laps", json={"source_id": uuid.uuid4().hex},
                         expect=201)["lap"]

    def finish(self, race_id: int) -> dict:
        """End and submit the race (it stays on the leaderboard, the track is free)."""
        self.call("POST", f"/api/races/{race_id}/end")
        return self.call("POST", f"/api/races/{race_id}/submit")
