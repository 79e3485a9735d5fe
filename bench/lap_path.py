"""Benchmark and profile of the lap path inside one process: a lap arriving -> the
``lb_update`` handed to Socket.IO (server time only, no network, no displays' sockets).

Builds the app (SQLite in a temporary folder, or ``--database-url`` PostgreSQL: its
schema is DROPPED and rebuilt, give it a database of its own), imports an event with
``--racers`` racers who have times (default 100), starts a race and records ``--laps``
laps through each path: a timer crossing (``POST /api/timer/crossings``), a car lap
(``lap`` on the ``/car`` namespace) and an operator's key press
(``POST /api/races/<id>/laps``), each through Flask's test clients (the real views,
services, commit and after-commit pushes). One display joined to the board receives
every update; the time is taken from just before the request to the moment
``lb_update`` is passed to ``socketio.emit`` (a wrapper stamps it).

Prints per path: p50/p99/max ms, SQL statements per lap, the load average before and
after, and PASS/MISSED for the targets (p50 <= 5 ms, p99 <= 15 ms). ``--profile``
also prints the top functions by cumulative time (cProfile) of the timer path, and
``--gc`` the garbage collections seen during the laps (``gc.callbacks``: count and the
longest pause). Figures from a loaded machine are not valid for the targets: the load
average is printed so the reader can tell.

Run: ``.venv/bin/python bench/lap_path.py [--laps 30] [--races 5] [--racers 100] [--profile]
[--database-url postgresql://127.0.0.1:5432/drem_bench]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import event as sa_event

from drem.demo.in_process import in_process_app
from drem.demo.synthetic import board_export

TARGET_P50_MS, TARGET_P99_MS = 5.0, 15.0
NS = "/leaderboard"



def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile ``p`` of ``values`` (NaN when empty)."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(p / 100 * len(ranked) + 0.5) - 1))]


class Stamps:
    """Wraps ``socketio.emit``: the time of every ``lb_update`` handed to Socket.IO (one per
    room: the track's board first, then the combined board)."""

    def __init__(self, socketio):
        self.socketio, self.original, self.times = socketio, socketio.emit, []

    def __enter__(self) -> Stamps:
        def emit(name, *args, **kwargs):
            if name == "lb_update":
                self.times.append(time.perf_counter())
            return self.original(name, *args, **kwargs)

        self.socketio.emit = emit
        return self

    def __exit__(self, *_exc) -> None:
        self.socketio.emit = self.original


class GcWatch:
    """Garbage collections during a block (``gc.callbacks``): count per generation, pauses in ms."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._start) * 1000))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc) -> None:
        gc.callbacks.remove(self)


def build_app(database_url: str):
    """The app with a fresh schema (SQLite in a temporary folder unless ``database_url``)."""
    return in_process_app(Path(tempfile.mkdtemp(prefix="drem-lap-path-")), database_url)


def admin_headers(app) -> dict:
    from drem.auth.service import create_api_token, create_user
    from drem.platform.extensions import db

    with app.app_context():
        admin = create_user(f"admin{uuid.uuid4().hex[:6]}", "bench-password-1", role="admin")
        _, token = create_api_token(admin, "bench")
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


class Board:
    """The imported event, its track, the live racer and one display joined to the board."""

    def __init__(self, app, racers: int):
        from drem.platform.extensions import socketio

        self.app, self.client, self.h = app, app.test_client(), admin_headers(app)
        resp = self.client.post("/api/events/import", json=board_export(racers, name="Lap Path Cup", time_limit_ms=600_000), headers=self.h)
        assert resp.status_code == 201, resp.get_json()
        event = resp.get_json()["event"]
        self.event_id, self.track_id = event["id"], event["tracks"][0]["id"]
        racers_ = self.client.get(f"/api/events/{self.event_id}", headers=self.h).get_json()["racers"]
        self.racer_id = next(r["user_id"] for r in racers_ if r["username"] == "live")
        self.display = socketio.test_client(app, namespace=NS)
        state = self.display.emit("join", {"event_id": self.event_id, "track": self.track_id}, namespace=NS,
                                  callback=True)
        assert len(state["entries"]) == racers, state.get("error")

    def race(self, **extra) -> int:
        resp = self.client.post("/api/races", json={"track_id": self.track_id, "racer_id": self.racer_id} | extra,
                                headers=self.h)
        assert resp.status_code == 201, resp.get_json()
        rid = resp.get_json()["race_id"]
        assert self.client.post(f"/api/races/{rid}/start", headers=self.h).status_code == 200
        return rid

    def finish(self, rid: int) -> None:
        self.client.post(f"/api/races/{rid}/end", headers=self.h)
        self.client.post(f"/api/races/{rid}/submit", headers=self.h)
        self.display.get_received(NS)


def timer_path(board: Board):
    """``send(i)`` for timer crossings of a new race (its first crossing sent already)."""
    rid = board.race()
    made = board.client.post(f"/api/tracks/{board.track_id}/timers", json={"name": "bench"}, headers=board.h)
    headers = {"Authorization": f"Bearer {made.get_json()['token']}"}
    board.client.post("/api/timer/crossings", json={"crossing_id": "c0", "device_time_ms": 1000}, headers=headers)

    def send(i: int) -> None:
        answer = board.client.post("/api/timer/crossings", headers=headers,
                                   json={"crossing_id": f"c{i + 1}", "device_time_ms": 1000 + (i + 1) * 2000}
                                   ).get_json()
        assert answer.get("stored"), answer

    def done() -> None:  # a timed track takes no car laps: the car path needs the timer gone
        board.client.post(f"/api/timers/{made.get_json()['timer']['id']}/revoke", headers=board.h)
        board.finish(rid)

    return send, done


def car_path(board: Board):
    """``send(i)`` for car laps over ``/car`` in a new race of an activated car."""
    from drem.platform.extensions import socketio

    code = board.client.post("/api/fleet/activation-codes", json={"hostname": "bench-car"},
                             headers=board.h).get_json()["code"]
    body = board.client.post("/api/car/activate", json={"code": code, "hostname": "bench-car",
                                                        "software_version": "bench"}).get_json()
    sio = socketio.test_client(board.app, namespace="/car", auth={"token": body["token"]})
    rid = board.race(car_id=body["car_id"])

    def send(i: int) -> None:
        answer = sio.emit("lap", {"lap_id": uuid.uuid4().hex, "model_id": "1", "lap_time_ms": 9000 + i % 3000,
                                  "resets": 0, "lap_number": i + 1, "finished_at": 1.0},
                          namespace="/car", callback=True)
        assert answer.get("stored"), answer
        sio.get_received("/car")

    def done() -> None:
        sio.disconnect("/car")
        board.finish(rid)

    return send, done


def operator_path(board: Board):
    """``send(i)`` for key presses of the operator in a new race (each lap 10 s of race time)."""
    from drem.events.models import Race
    from drem.platform.extensions import db

    rid = board.race()

    def prepare(_i: int) -> None:
        with board.app.app_context():
            db.session.get(Race, rid).lap_start_ms -= 10_000  # the lap ran 10 s (not a ranked column)
            db.session.commit()
            db.session.remove()

    def send(i: int) -> None:
        resp = board.client.post(f"/api/races/{rid}/laps", json={"source_id": f"k{i}"}, headers=board.h)
        assert resp.status_code == 201, resp.get_json()

    send.prepare = prepare
    return send, lambda: board.finish(rid)


def measure(board: Board, name: str, make, laps: int, races: int, profile: bool) -> dict:
    """Record ``races`` races of ``laps`` laps through one path (3 warm-up laps before,
    not measured); returns its figures."""
    from drem.platform.extensions import db, socketio

    statements = [0, False]  # count, counting

    def count(*_args) -> None:
        if statements[1]:
            statements[0] += 1

    with board.app.app_context():
        engine = db.engine
    times, cpu, counts = [], [], []
    profiler = cProfile.Profile() if profile else None
    sa_event.listen(engine, "before_cursor_execute", count)
    with Stamps(socketio) as stamps, GcWatch() as gcw:
        for race in range(races):
            send, done = make(board)
            board.display.get_received(NS)
            prepare = getattr(send, "prepare", None)
            warmup = 3 if race == 0 else 0  # the process's board, compiled queries
            for i in range(laps + warmup):
                if prepare is not None:
                    prepare(i)
                before = len(stamps.times)
                statements[:] = [0, True]
                if profiler is not None and i >= warmup:
                    profiler.enable()
                start, cpu0 = time.perf_counter(), time.process_time()
                send(i)
                cpu1 = time.process_time()
                if profiler is not None:
                    profiler.disable()
                statements[1] = False
                board.display.get_received(NS)
                if i < warmup:
                    continue
                if len(stamps.times) == before:
                    raise RuntimeError(f"{name} lap {i}: no lb_update was emitted")
                times.append((stamps.times[before] - start) * 1000)  # the track's room: the first push
                cpu.append((cpu1 - cpu0) * 1000)
                counts.append(statements[0])
            done()
    sa_event.remove(engine, "before_cursor_execute", count)
    out = {"path": name, "laps": laps * races, "cpu_p50_ms": pct(cpu, 50), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "max_ms": max(times),
           "statements": max(counts), "gc": len(gcw.pauses),
           "gc_max_ms": max((p for _g, p in gcw.pauses), default=0.0),
           "gc_total_ms": sum(p for _g, p in gcw.pauses),
           "gc_by_generation": [sum(1 for g, _ in gcw.pauses if g == n) for n in range(3)]}
    if profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
        out["profile"] = text.getvalue()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laps", type=int, default=30, help="laps per race (a 4-minute race has 15-25)")
    parser.add_argument("--races", type=int, default=5, help="races per path, one after the other")
    parser.add_argument("--racers", type=int, default=100, help="racers with times on the board")
    parser.add_argument("--database-url", default="", help="PostgreSQL (its schema is dropped!); default SQLite")
    parser.add_argument("--profile", action="store_true", help="cProfile the laps, print the top functions")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the collector as Python starts it (default: drem.platform.serving.freeze_heap "
                             "after the app is built, as wsgi.py does in every server)")
    parser.add_argument("--paths", nargs="+", default=["timer", "car", "operator"],
                        choices=["timer", "car", "operator"])
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    app = build_app(args.database_url)
    board = Board(app, args.racers)
    if not args.no_freeze:
        from drem.platform.serving import freeze_heap

        freeze_heap()
    makers = {"timer": timer_path, "car": car_path, "operator": operator_path}
    print(f"lap path in one process: {'PostgreSQL' if args.database_url else 'SQLite'}, board of "
          f"{args.racers} racers with times, {args.races} races of {args.laps} laps per path; "
          f"collector {'as Python starts it' if args.no_freeze else 'frozen after start-up'}; load average before "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    missed = False
    for name in args.paths:
        r = measure(board, name, makers[name], args.laps, args.races, args.profile)
        ok50, ok99 = r["p50_ms"] <= TARGET_P50_MS, r["p99_ms"] <= TARGET_P99_MS
        missed |= not (ok50 and ok99)
        print(f"{name:>8}: p50 {r['p50_ms']:.2f} ms [{'PASS' if ok50 else 'MISSED'} <= {TARGET_P50_MS:g}]  "
              f"p99 {r['p99_ms']:.2f} ms [{'PASS' if ok99 else 'MISSED'} <= {TARGET_P99_MS:g}]  "
              f"max {r['max_ms']:.2f} ms  CPU p50 {r['cpu_p50_ms']:.2f} ms  SQL statements per lap {r['statements']}  "
              f"GCs {r['gc']} {r['gc_by_generation']} (longest {r['gc_max_ms']:.1f} ms, "
              f"all {r['gc_total_ms']:.0f} ms)")
        if "profile" in r:
            print(r["profile"])
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
          f"({os.cpu_count()} cores; figures under load are not valid for the targets)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
