"""Two gunicorn processes sharing one database and Redis (``REDIS_URL``): a display
connected to one receives a lap recorded through the other, and a display that joins
the first afterwards gets the full, current state (its leaderboard cache was behind)."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time

import pytest
import socketio

from drem.demo.live_server import fresh_postgres_database
from tests.e2e.leaderboard_race import RaceDriver

REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


class Display:
    """A plain Socket.IO client on ``/leaderboard`` (websocket only), recording messages."""

    def __init__(self, url: str, event_id: int, track):
        self.messages: list[tuple[float, str, dict]] = []
        self.arrived = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        for name in ("lb_update", "lb_full", "race_state"):
            self.sio.on(name, self._recorder(name), namespace="/leaderboard")
        self.sio.connect(url, namespaces=["/leaderboard"], transports=["websocket"], wait_timeout=10)
        self.state = self.sio.call("join", {"event_id": event_id, "track": track}, namespace="/leaderboard",
                                   timeout=10)

    def _recorder(self, name):
        def record(data):
            with self.arrived:
                self.messages.append((time.monotonic(), name, data))
                self.arrived.notify_all()
        return record

    def wait_for(self, predicate, timeout: float = 3.0):
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for stamp, name, data in self.messages:
                    if predicate(name, data):
                        return stamp, data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message in {timeout} s: {self.messages!r}"[:2000])
                self.arrived.wait(left)

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def two_servers(live_server_factory, tmp_path):
    """Servers A and B: one gunicorn worker each, the same database, Redis and channel."""
    if not _redis_up():
        pytest.skip(f"no Redis at {REDIS_URL}")
    common = {"redis_url": REDIS_URL, "admin_password": secrets.token_urlsafe(12),
              "env": {"SOCKETIO_CHANNEL": f"drem-test-{secrets.token_hex(4)}"}}
    with contextlib.ExitStack() as stack:
        base = os.environ.get("DATABASE_URL", "")
        if base:
            common["database_url"] = stack.enter_context(fresh_postgres_database(base))
        else:
            common["database_url"] = f"sqlite:///{tmp_path / 'shared.sqlite'}"
        a = live_server_factory(**common)
        b = live_server_factory(**common)
        yield a, b


def test_a_display_on_one_worker_gets_a_lap_recorded_through_the_other(two_servers):
    a, b = two_servers
    drv = RaceDriver(a)
    event = drv.event(tracks=2)
    track = event["tracks"][0]["id"]
    racer = drv.racer(event["id"], country_code="FR")

    on_b = Display(b.url, event["id"], track)  # a display connected to server B
    combined_on_b = Display(b.url, event["id"], "combined")
    try:
        assert on_b.state["entries"] == []
        race = drv.start(track, racer["id"])  # through server A
        on_b.wait_for(lambda n, d: n == "race_state" and d["status"] == "running")
        time.sleep(1.1)
        sent = time.monotonic()
        lap = drv.lap(race["race_id"])  # through server A
        stamp, update = on_b.wait_for(lambda n, d: n == "lb_update" and d["lap"] is not None, timeout=2.0)
        assert stamp - sent < 1.0
        assert update["track"] == track and update["lap"]["time_ms"] == lap["time_ms"]
        assert [(e["username"], e["rank"], e["ranking_value_ms"]) for e in update["entries"]] == [
            (racer["username"], 1, lap["time_ms"])]
        _, combined = combined_on_b.wait_for(lambda n, d: n == "lb_update" and d["lap"] is not None)
        assert combined["track"] == "combined" and combined["entries"][0]["ranking_value_ms"] == lap["time_ms"]
        # the live race reached B's display too, with the lap, in the same message
        assert update["race"]["race_id"] == race["race_id"] and update["race"]["lap_count"] == 1

        # B never handled the lap itself; a display joining B now still gets the current state
        late = Display(b.url, event["id"], track)
        try:
            assert late.state["version"] == update["to"]
            assert [(e["username"], e["ranking_value_ms"]) for e in late.state["entries"]] == [
                (racer["username"], lap["time_ms"])]
        finally:
            late.close()
        # and the other way round: a display on A hears a lap recorded through B
        on_a = Display(a.url, event["id"], track)
        try:
            time.sleep(max(0.0, 1.6 - (time.monotonic() - sent)))
            lap2 = RaceDriver(b).lap(race["race_id"])
            _, update2 = on_a.wait_for(lambda n, d: n == "lb_update" and (d["lap"] or {}).get("lap_number") == 2)
            assert update2["from"] == update["to"]  # B's board was behind; the change still chains
            assert update2["lap"]["time_ms"] == lap2["time_ms"]
        finally:
            on_a.close()
    finally:
        on_b.close()
        combined_on_b.close()
