"""Benchmark of automatic lap timing: a crossing on the timer's pin -> the lap on a
leaderboard display, and the timing error against the pulse schedule.

Server: the real drem under gunicorn (gevent, one worker), SQLite in a fresh instance
folder, ``TIMER_DEBOUNCE_MS=1000`` so laps may be 1.1 s apart. Timer: the real device
program (``car-client timer run`` on gpiozero's mock pins, :class:`drem.demo.timer_process.TimerProcess`),
activated with a one-time code; its mock pin plays a pulse schedule (``--crossings``,
default 100, one every 1.1-1.6 s at random), which is sent ahead, so each edge happens
at its scheduled time. The track's first crossing starts the race. Display: one
Socket.IO client on ``/leaderboard`` joined to the track, as the leaderboard page is.

Printed: latency from the scheduled edge to the display having the ``lb_update`` with
that lap (p50/p95/p99/max, target p99 <= 100 ms), the timing error |lap time -
scheduled interval| (p50/p99/max, target <= 1 ms), the error against the pulses as the
mock pin really played them and how late it played them (a loaded machine wakes the
stand-in late), with the load average before and after.

Run: ``.venv/bin/python bench/timer.py [--crossings 100]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import socketio

from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until
from drem.demo.timer_process import TimerProcess


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values`` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossings", type=int, default=100)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder = Path(tempfile.mkdtemp(prefix="drem-bench-timer-"))
    with LiveServer(folder / "instance", env={"TIMER_DEBOUNCE_MS": "1000"}) as server:
        op = server.create_user("operator")
        racer = server.create_user("racer")
        event = server.api("POST", "/api/events", token=server.admin_token, json={
            "name": f"Timer bench {uuid.uuid4().hex[:6]}", "date": "2026-11-29", "race_time_min": 10,
            "tracks": [{"name": "Track 1", "layout": "reinvent_base"}]}).json()
        track_id = event["tracks"][0]["id"]
        server.api("POST", f"/api/events/{event['id']}/racers", token=server.admin_token,
                   json={"user_id": racer["id"]}).raise_for_status()
        server.api("PUT", f"/api/tracks/{track_id}/timing", token=op["token"],
                   json={"first_crossing_starts_race": True}).raise_for_status()
        code = server.api("POST", f"/api/tracks/{track_id}/timer-codes", token=op["token"],
                          json={"name": "finish line"}).json()["code"]
        timer = TimerProcess(folder / "timer", hostname="timer-bench")
        timer.activate(server.url, code)
        timer.start()
        wait_until(lambda: server.api("GET", f"/api/tracks/{track_id}/timers", token=op["token"])
                   .json()["timers"][0]["online"], 20, "the timer online")

        seen: dict[int, int] = {}  # lap number -> monotonic ns when the display had it
        got_all = threading.Event()
        display = socketio.Client()

        @display.on("lb_update", namespace="/leaderboard")
        def on_update(message):
            now = time.monotonic_ns()
            lap = message.get("lap") or {}
            if lap.get("lap_number") is not None:
                seen.setdefault(lap["lap_number"], now)
            if len(seen) >= args.crossings - 1:
                got_all.set()

        display.connect(server.url, namespaces=["/leaderboard"], transports=["websocket"])
        display.call("join", {"event_id": event["id"], "track": track_id}, namespace="/leaderboard")
        race_id = server.api("POST", "/api/races", token=op["token"],
                             json={"track_id": track_id, "racer_id": racer["id"]}).json()["race_id"]
        offsets, at = [], 0.0
        for _ in range(args.crossings):
            offsets.append(at)
            at += rng.uniform(1.1, 1.6)
        print(f"{args.crossings} crossings over {at:.0f} s ...", flush=True)
        scheduled = timer.pulse_schedule(offsets, lead_s=1.0)
        if not got_all.wait(at + 60):
            print(f"only {len(seen)} of {args.crossings - 1} laps reached the display")
        display.disconnect()
        laps = server.api("GET", f"/api/races/{race_id}", token=op["token"]).json()["laps"]
        timer.stop()
        played = timer.played()
    load_after = os.getloadavg()
    latency_ms = [(seen[n] - scheduled[n]) / 1e6 for n in range(1, args.crossings) if n in seen]
    intervals = [(b - a) / 1e6 for a, b in zip(scheduled, scheduled[1:], strict=False)]
    errors = [abs(lap["time_ms"] - want) for lap, want in zip(laps, intervals, strict=False)]
    print(f"laps stored: {len(laps)} of {args.crossings - 1}; on the display: {len(latency_ms)}")
    print(f"pin -> display latency ms: p50 {percentile(latency_ms, 50):.1f}  p95 {percentile(latency_ms, 95):.1f}  "
          f"p99 {percentile(latency_ms, 99):.1f}  max {max(latency_ms, default=float('nan')):.1f}  (target p99 <= 100)")
    print(f"timing error ms |lap - schedule|: p50 {statistics.median(errors):.3f}  "
          f"p99 {percentile(errors, 99):.3f}  max {max(errors):.3f}  (target <= 1); "
          f"{sum(e <= 1.0 for e in errors)} of {len(errors)} laps within 1 ms")
    edges = [p[2] for p in played]
    played_errors = [abs(lap["time_ms"] - (b - a) / 1e6) for lap, a, b in zip(laps, edges, edges[1:], strict=False)]
    late_ms = [(p[2] - p[1]) / 1e6 for p in played]
    from_edge_ms = [(seen[n] - played[n][2]) / 1e6 for n in range(1, min(args.crossings, len(played))) if n in seen]
    print(f"played pulse -> display latency ms: p50 {percentile(from_edge_ms, 50):.1f}  "
          f"p95 {percentile(from_edge_ms, 95):.1f}  p99 {percentile(from_edge_ms, 99):.1f}  "
          f"max {max(from_edge_ms, default=float('nan')):.1f}")
    print(f"timing error ms |lap - pulses as played|: p50 {statistics.median(played_errors):.3f}  "
          f"max {max(played_errors):.3f}; the mock pin played pulses late by p50 {statistics.median(late_ms):.3f}  "
          f"max {max(late_ms):.3f} ms (the stand-in's wake-up on this machine)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")


if __name__ == "__main__":
    main()
