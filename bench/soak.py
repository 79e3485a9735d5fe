"""Soak test of the scale-out stack: a whole event's load for ``--minutes`` (default 10).

The stack (as in production, docs/deployment.md "Scale-out"): PostgreSQL (a fresh
database next to ``--database-url``, dropped at the end), Redis (``--redis-url``, its own
Socket.IO channel), SeaweedFS (S3 model storage), a TCP clamd, ``--web`` one-worker
gunicorn processes (default 2, ``drem.platform.serving`` settings) behind HAProxy with
sticky sessions, and ``drem worker`` (``BACKGROUND_JOBS=external``).

The load: ``--displays`` leaderboard displays (default 1,000; light websocket readers that
reconnect and rejoin when dropped, bench/leaderboard.py's), ``--cars`` light cars (default
50, bench/light_cars.py: the real car protocol, 1 s heartbeats, a lap every ``--lap-s``
seconds into each car's lap log),
one lap timer and one operator console per track (``--tracks``, default 2): the console
runs races back to back (set up with the next car, start, ``--race-s`` seconds, end,
submit), the timer posts a crossing every ``--lap-s`` seconds (``POST
/api/timer/crossings``); an operator sends a command (``set_tail_light``) to a random car
every second; racers upload a model every ``--upload-every`` seconds. Halfway one web
process's gunicorn worker is killed (SIGKILL) and its master starts a new one.

Printed per minute: lap -> display p50/p99 (crossing sent -> display has the
``lb_update``), command -> acknowledged p50/p99, errors, HTTP 5xx answers, display
disconnects, and the resident memory of every process. At the end: every lap the timers
produced is stored exactly once and counted on its track's leaderboard, every lap the
cars reported is in the cars' lap log exactly once, and PASS/FAIL for the issue's targets
(0 lost or doubled laps, 0 5xx, memory growth <= 10 % from minute 2 to the last minute per
process that lived through both, per-minute p99 stable: none above twice the median).
Load average before and after.

Run: ``.venv/bin/python bench/soak.py [--minutes 10] [--displays 1000] [--cars 50]
--database-url postgresql://127.0.0.1:5432/postgres [--redis-url redis://127.0.0.1:6379/0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import benchlib
import leaderboard as lb_bench
import light_cars
import psutil
import requests
import sqlalchemy as sa
from fleet import Observer, percentile

from drem.demo.launchers import Clamd, drem_cli, server_env
from drem.demo.live_server import fresh_postgres_database
from drem.demo.processes import child_pids, free_port, rss_bytes
from drem.demo.scaleout import ScaleoutServices, WebCluster

ADMIN_PASSWORD = "soak-admin-password-1"
NS = "/leaderboard"


# ------------------------------------------------------------------------ displays


class _ReDisplay(lb_bench._Display):
    """A display that reports a dropped connection (it is reconnected by the runner)."""

    def __init__(self, *args, lost=None):
        super().__init__(*args)
        self.lost = lost

    def connection_lost(self, exc) -> None:
        if self.lost is not None:
            self.lost()


async def _displays(host: str, port: int, count: int, join: str, ready, stop, out) -> None:
    loop = asyncio.get_running_loop()
    frames: list[list] = [[] for _ in range(count)]
    drops = [0]
    sem = asyncio.Semaphore(40)

    async def keep(i: int) -> None:
        first = True
        while not stop.is_set():
            lost = asyncio.Event()
            async with sem:
                done = loop.create_future()
                try:
                    transport, _ = await loop.create_connection(
                        lambda done=done, lost=lost: _ReDisplay(f"{host}:{port}", join, done, frames[i],
                                                                lost=lambda: loop.call_soon_threadsafe(lost.set)),
                        host, port)
                    await asyncio.wait_for(done, 30)
                except (TimeoutError, OSError, RuntimeError):
                    await asyncio.sleep(1.0)
                    continue
            if first:
                first = False
                ready.put(1)
            while not stop.is_set() and not lost.is_set():
                await asyncio.sleep(0.2)
            if lost.is_set() and not stop.is_set():
                drops[0] += 1
                await asyncio.sleep(random.uniform(0.5, 2.0))  # as the page's Socket.IO client backs off
            else:
                transport.close()

    await asyncio.gather(*(keep(i) for i in range(count)))
    out.put((drops[0], frames))


def _display_process(host, port, count, join, ready, stop, out) -> None:
    asyncio.run(_displays(host, port, count, join, ready, stop, out))


# -------------------------------------------------------------------------- the event


class Http:
    """requests with the bench's counters: every answer >= 500 and every exception."""

    def __init__(self, url: str, token: str | None, stats: dict):
        self.url, self.stats = url, stats
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response | None:
        try:
            resp = self.session.request(method, self.url + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            self.stats["errors"].append(f"{method} {path}: {exc!r}"[:200])
            return None
        if resp.status_code >= 500:
            self.stats["5xx"].append(f"{method} {path}: {resp.status_code}")
        return resp


def setup_event(url: str, args, stats: dict) -> dict:
    """Admin, operator, the event with ``--tracks`` tracks (each with a lap timer), ``--cars``
    racers registered; returns ids and tokens."""
    admin = requests.post(url + "/api/auth/tokens", json={"username": "admin", "password": ADMIN_PASSWORD,
                                                          "name": "soak"}, timeout=30)
    admin.raise_for_status()
    token = admin.json()["token"]
    api = Http(url, token, stats)
    event = api.call("POST", "/api/events", json={
        "name": "Soak Cup", "date": date.today().isoformat(), "country_code": "DE", "race_time_min": 10,
        "resets_allowed_per_lap": 3, "ranking_method": "best_lap",
        "tracks": [{"name": f"Track {i + 1}", "layout": "other"} for i in range(args.tracks)]}).json()
    racers = []
    for i in range(args.cars):
        made = api.call("POST", "/api/users", json={"username": f"soak{i:03d}", "password": "soak-racer-pw-1",
                                                    "role": "racer"}).json()
        api.call("POST", f"/api/events/{event['id']}/racers", json={"user_id": made["id"]})
        racers.append(made["id"])
    timers = []
    for track in event["tracks"]:
        made = api.call("POST", f"/api/tracks/{track['id']}/timers", json={"name": "soak"}).json()
        timers.append(made["token"])
    return {"token": token, "event_id": event["id"], "tracks": [t["id"] for t in event["tracks"]],
            "racers": racers, "timers": timers}


class TrackRunner(threading.Thread):
    """One track: its operator console runs races back to back, its lap timer posts crossings."""

    def __init__(self, url, ev, index, cars, args, stats, stop):
        super().__init__(daemon=True)
        self.api = Http(url, ev["token"], stats)
        self.timer = Http(url, ev["timers"][index], stats)
        self.track, self.racers, self.cars = ev["tracks"][index], ev["racers"], cars
        self.index, self.args, self.stats, self.stop = index, args, stats, stop
        self.device_ms = 1000 + index * 10_000_000
        self.sent: dict[str, float] = {}  # crossing id -> time sent (stored as a lap)
        self.lap_numbers: dict[tuple[int, int], str] = {}  # (race id, lap number) -> crossing id

    def crossing(self, race_id: int | None) -> None:
        self.device_ms += int(self.args.lap_s * 1000 * random.uniform(0.9, 1.1))
        cid = f"{self.index}-{self.device_ms}"
        sent = time.time()
        resp = self.timer.call("POST", "/api/timer/crossings", json={"crossing_id": cid,
                                                                    "device_time_ms": self.device_ms})
        if resp is not None and resp.ok and resp.json().get("stored"):
            self.sent[cid] = sent
            self.lap_numbers[(race_id, resp.json()["lap_number"])] = cid

    def run(self) -> None:
        n = self.index
        while not self.stop.is_set():
            car = self.cars[n % len(self.cars)]
            racer = self.racers[n % len(self.racers)]
            n += self.args.tracks
            made = self.api.call("POST", "/api/races", json={"track_id": self.track, "racer_id": racer,
                                                             "car_id": car["car_id"]})
            if made is None or made.status_code != 201:
                self.stats["errors"].append(f"race set-up: {made.status_code if made else 'no answer'}")
                self.stop.wait(2)
                continue
            rid = made.json()["race_id"]
            self.api.call("POST", f"/api/races/{rid}/start")
            self.crossing(None)  # the first crossing starts the timed lap
            ends = time.monotonic() + self.args.race_s
            while time.monotonic() < ends and not self.stop.is_set():
                self.stop.wait(self.args.lap_s * random.uniform(0.9, 1.1))
                self.crossing(rid)
            self.api.call("POST", f"/api/races/{rid}/end")
            self.api.call("POST", f"/api/races/{rid}/submit")


def commands(url, token, ids, observer, sent_at, stop, stats) -> None:
    """An operator sends ``set_tail_light`` to a random car every second."""
    api = Http(url, token, stats)
    rng = random.Random(3)
    while not stop.wait(1.0):
        begin = time.time()
        resp = api.call("POST", "/api/fleet/commands", json={"car_ids": [rng.choice(ids)], "type": "set_tail_light",
                                                             "params": {"colour": rng.choice(["red", "blue"])}})
        if resp is not None and resp.ok:
            sent_at[resp.json()["commands"][0]["id"]] = (begin, time.perf_counter())


def uploads(url, admin_token, every_s, folder: Path, stop, stats, counts) -> None:
    """Racers upload a small DeepRacer model every ``every_s`` seconds (each a new racer)."""
    factories = benchlib.test_module("tests/models_mgr/factories.py")
    api = Http(url, admin_token, stats)
    i = 0
    while not stop.wait(every_s):
        i += 1
        made = api.call("POST", "/api/users", json={"username": f"uploader{i:04d}", "password": "soak-racer-pw-1",
                                                    "role": "racer"})
        if made is None or not made.ok:
            continue
        tok = Http(url, None, stats).call("POST", "/api/auth/tokens", json={
            "username": f"uploader{i:04d}", "password": "soak-racer-pw-1", "name": "soak"})
        if tok is None or not tok.ok:
            continue
        path = factories.deepracer_tar_gz(folder, name=f"model{i}.tar.gz")
        racer = Http(url, tok.json()["token"], stats)
        resp = racer.call("POST", "/api/models", params={"filename": path.name}, data=path.read_bytes(),
                          headers={"Content-Type": "application/octet-stream"})
        if resp is not None and resp.status_code == 201:
            counts["uploads"] += 1


# ------------------------------------------------------------------------ measuring


def _rss(pid: int) -> int:
    try:
        return rss_bytes(pid)
    except psutil.Error:
        return 0


def rss_all(cluster: WebCluster, scale: ScaleoutServices) -> dict[str, int]:
    """Resident memory (bytes) of every server-side process, by name (workers by pid)."""
    out = {}
    for web in cluster.webs:
        if web.alive:
            out[f"{web.name}-master"] = _rss(web.pid)
            for pid in child_pids(web.pid):
                out[f"{web.name}-worker-{pid}"] = _rss(pid)
    for proc in scale.workers:
        if proc.alive:
            out[proc.name] = _rss(proc.pid)
    if cluster.proxy is not None and cluster.proxy.alive:
        out["haproxy"] = _rss(cluster.proxy.pid)
    return out


def lap_latencies(frames_list, runners, event_id) -> list[tuple[float, float]]:
    """(time sent, ms until the display had it) for every lb_update of a timer lap."""
    sent_by_lap = {}
    for r in runners:
        for (race_id, number), cid in r.lap_numbers.items():
            sent_by_lap[(race_id, number)] = r.sent[cid]
    prefix = f"4{NS},".encode()
    out = []
    for frames in frames_list:
        for stamp, payload in frames:
            if not payload.startswith(b"42"):
                continue
            name, body = json.loads(payload[payload.index(b"[", len(prefix)):])
            if name != "lb_update" or not body.get("lap") or body["event_id"] != event_id:
                continue
            key = (body["lap"]["race_id"], body["lap"]["lap_number"])
            if key in sent_by_lap:
                out.append((sent_by_lap[key], (stamp - sent_by_lap[key]) * 1000))
    return out


def by_minute(samples: list[tuple[float, float]], t0: float, minutes: int) -> list[list[float]]:
    rows = [[] for _ in range(minutes)]
    for at, value in samples:
        m = int((at - t0) // 60)
        if 0 <= m < minutes:
            rows[m].append(value)
    return rows


def check_laps(database_url: str, event_id: int, runners, fleet_folder: Path, url: str, token: str) -> list[str]:
    """Every timer lap stored once and counted on its board; every car lap in the lap log once."""
    problems = []
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT l.source_id, r.track_id FROM laps l JOIN races r ON r.id = l.race_id WHERE r.event_id = :e"),
            {"e": event_id}).all()
        counts = defaultdict(int)
        for source_id, _track in rows:
            counts[source_id] += 1
        produced = {cid for r in runners for cid in r.sent}
        stored = {sid.split(":", 2)[2] for sid in counts if sid.startswith("timer:")}
        lost, doubled = produced - stored, [s for s, n in counts.items() if n > 1]
        extra = stored - produced
        if lost or doubled or extra:
            problems.append(f"timer laps: {len(lost)} lost, {len(doubled)} doubled, {len(extra)} not sent")
        reported = light_cars.reported_laps(fleet_folder)
        logged = defaultdict(int)
        for (lap_id,) in conn.execute(sa.text("SELECT lap_id FROM car_lap_reports")).all():
            logged[lap_id] += 1
        missing = set(reported) - set(logged)
        if missing or any(n > 1 for n in logged.values()):
            problems.append(f"car laps: {len(missing)} of {len(reported)} missing from the lap log, "
                            f"{sum(1 for n in logged.values() if n > 1)} doubled")
        per_track = defaultdict(int)
        for (track,) in conn.execute(sa.text(
                "SELECT r.track_id FROM laps l JOIN races r ON r.id = l.race_id WHERE r.event_id = :e "
                "AND r.status IN ('running', 'paused', 'ended', 'submitted')"), {"e": event_id}).all():
            per_track[track] += 1
    engine.dispose()
    for r in runners:
        board = requests.get(f"{url}/api/events/{event_id}/leaderboard", params={"track": r.track}, timeout=30,
                             headers={"Authorization": f"Bearer {token}"}).json()
        shown = sum(e["summary"]["total_laps"] for e in board["entries"])
        if shown != per_track[r.track]:
            problems.append(f"track {r.track}: board counts {shown} laps, the database {per_track[r.track]}")
    return problems


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--displays", type=int, default=1000)
    parser.add_argument("--cars", type=int, default=50)
    parser.add_argument("--tracks", type=int, default=2, help="tracks, each with a lap timer and a console")
    parser.add_argument("--web", type=int, default=2, help="web processes (one gevent worker each)")
    parser.add_argument("--job-workers", type=int, default=1)
    parser.add_argument("--race-s", type=float, default=60.0, help="seconds per race")
    parser.add_argument("--lap-s", type=float, default=8.0, help="seconds per timer lap")
    parser.add_argument("--upload-every", type=float, default=5.0, help="seconds between model uploads")
    parser.add_argument("--display-procs", type=int, default=2)
    parser.add_argument("--light-procs", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                        help="PostgreSQL server (a fresh database is made next to this one)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgresql", "postgres")):
        parser.error("the soak runs on PostgreSQL: --database-url postgresql://…")

    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} cores)", flush=True)
    stats = {"errors": [], "5xx": []}
    folder = Path(tempfile.mkdtemp(prefix="drem-soak-"))
    logs = folder / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database(args.database_url))
        clamd = Clamd(folder / "clamd", tcp=True)
        clamd_url = clamd.start()
        stack.callback(clamd.stop)
        scale = ScaleoutServices(folder, job_workers=args.job_workers)
        stack.callback(scale.stop)
        env = {"DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "CLAMD_URL": clamd_url,
               "SOCKETIO_CHANNEL": f"drem-soak-{secrets.token_hex(4)}", "BACKGROUND_JOBS": "external",
               "PROXY_HOPS": "1", "CAR_OFFLINE_AFTER_S": "10", "LOGIN_RATE_LIMIT": "100000 per minute"}
        env.update(scale.start_storage("drem-soak"))
        env = server_env(folder / "instance", env)
        drem_cli(["init", "--admin-password", ADMIN_PASSWORD], env)
        port = free_port()
        cluster = WebCluster(args.web, port, env, logs).start()
        stack.callback(cluster.stop)
        scale.start_workers(env, logs)
        url = cluster.url
        print(f"stack: {args.web} web processes behind HAProxy at {url}, PostgreSQL, Redis, SeaweedFS, "
              f"{args.job_workers} drem worker(s); logs in {logs}", flush=True)

        ev = setup_event(url, args, stats)
        cars = [light_cars.activate(url, ev["token"], f"soak-{i:03d}") for i in range(args.cars)]
        fleet = light_cars.LightFleet(url, cars, folder / "cars", heartbeat_s=1.0, lap_s=args.lap_s,
                                      procs=args.light_procs, always_drive=True).start()
        stack.callback(fleet.stop)

        join = json.dumps(["join", {"event_id": ev["event_id"], "track": ev["tracks"][0]}])
        ctx = mp.get_context("fork")
        ready, out, dstop = ctx.Queue(), ctx.Queue(), ctx.Event()
        share = [args.displays // args.display_procs + (i < args.displays % args.display_procs)
                 for i in range(args.display_procs)]
        dprocs = [ctx.Process(target=_display_process, args=("127.0.0.1", port, n, join, ready, dstop, out),
                              daemon=True) for n in share if n]
        for p in dprocs:
            p.start()
        for _ in range(args.displays):
            ready.get(timeout=600)
        print(f"{args.displays} displays and {args.cars} cars connected", flush=True)

        stop = threading.Event()
        observer = Observer(url, ev["token"])
        sent_at: dict[int, tuple[float, float]] = {}
        counts = {"uploads": 0}
        runners = [TrackRunner(url, ev, i, cars, args, stats, stop) for i in range(args.tracks)]
        threads = [*runners,
                   threading.Thread(target=commands, args=(url, ev["token"], [c["car_id"] for c in cars], observer,
                                                           sent_at, stop, stats), daemon=True),
                   threading.Thread(target=uploads, args=(url, ev["token"], args.upload_every, folder, stop, stats,
                                                          counts), daemon=True)]
        t0 = time.time()
        for t in threads:
            t.start()
        memory: list[dict[str, int]] = []
        killed = False
        for minute in range(args.minutes):
            while time.time() < t0 + 60 * (minute + 1):
                if not killed and time.time() >= t0 + 30 * args.minutes:
                    victim = child_pids(cluster.webs[0].pid)
                    if victim:
                        os.kill(victim[0], signal.SIGKILL)
                        print(f"[{minute}:30] killed gunicorn worker {victim[0]} of {cluster.webs[0].name}",
                              flush=True)
                    killed = True
                time.sleep(0.5)
            memory.append(rss_all(cluster, scale))
            print(f"[minute {minute + 1}] errors {len(stats['errors'])}, 5xx {len(stats['5xx'])}, uploads "
                  f"{counts['uploads']}, memory MB " + ", ".join(f"{k} {v / 2**20:.0f}"
                                                                 for k, v in memory[-1].items()), flush=True)
        stop.set()
        for t in runners:
            t.join(args.race_s + 30)
        observer.counting = False
        time.sleep(2)
        dstop.set()
        results = [out.get(timeout=300) for _ in dprocs]
        observer.close()
        fleet.stop()
        drops = sum(d for d, _ in results)
        frames = [f for _, fr in results for f in fr]
        laps = lap_latencies(frames, runners, ev["event_id"])
        acks = [(begin, (observer.acked_at[i] - perf) * 1000) for i, (begin, perf) in sent_at.items()
                if i in observer.acked_at]
        lap_rows, ack_rows = by_minute(laps, t0, args.minutes), by_minute(acks, t0, args.minutes)
        print("minute  lap->display p50/p99 ms   command->ack p50/p99 ms")
        p99s = []
        for m in range(args.minutes):
            lr, ar = lap_rows[m], ack_rows[m]
            if lr:
                p99s.append(percentile(lr, 99))
            print(f"{m + 1:6d}  {percentile(lr, 50):8.1f} / {percentile(lr, 99):8.1f}   "
                  f"{percentile(ar, 50):8.1f} / {percentile(ar, 99):8.1f}   ({len(lr)} display updates, "
                  f"{len(ar)} commands)")
        problems = check_laps(database_url, ev["event_id"], runners, folder / "cars", url, ev["token"])
        growth = []
        if len(memory) >= 3:
            first, last = memory[1], memory[-1]
            for name in sorted(set(first) & set(last)):
                growth.append((name, 100 * (last[name] - first[name]) / max(1, first[name])))
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          "(figures under a load average near the core count or above are not valid for the targets)")
    print(f"errors {len(stats['errors'])} {stats['errors'][:5]}, 5xx {len(stats['5xx'])} {stats['5xx'][:5]}, "
          f"display disconnects {drops}, commands acknowledged {len(acks)} of {len(sent_at)}, "
          f"uploads {counts['uploads']}")
    checks = {
        "0 lost or doubled laps, all on the boards": not problems,
        "0 5xx": not stats["5xx"],
        "memory growth <= 10 % (minute 2 -> last)": all(g <= 10 for _n, g in growth),
        "p99 stable per minute (none above 2x the median)": bool(p99s) and max(p99s) <= 2 * statistics.median(p99s),
    }
    for problem in problems:
        print(f"  {problem}")
    for name, g in growth:
        print(f"  memory {name}: {g:+.1f} %")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
