"""Benchmark of the fleet server: many car clients on one gunicorn + gevent worker.

Starts its own live server (drem/demo/live_server.py: gunicorn, one gevent worker,
production settings, SQLite in a temporary instance folder), activates ``--cars``
cars through the API and runs one **real car client daemon process** per car
(``python -m car_client run --vehicle standin``, drem/demo/car_process.py) with
its heartbeat set to ``--heartbeat`` seconds. For ``--duration`` seconds it

- counts the messages the server handled: every heartbeat the server stores is
  pushed to the operators' ``/fleet`` room as ``car_status``, every command result as
  ``command_status``; an observer on ``/fleet`` (an operator's API token) counts them;
- sends ``--command-rate`` commands per second (``set_tail_light`` to a random car,
  ``POST /api/fleet/commands``) and measures the time from sending the POST to the
  ``acknowledged`` push of that command (the car's ``command_result`` handled by the
  server): p50, p99 and max;
- reads the gunicorn worker's CPU time (user + system, psutil) and
  resident memory at the start and the end.

``--light`` runs light cars instead (``bench/light_cars.py``: many simulated cars in
``--light-procs`` processes, each speaking the real car protocol through the car daemon's
own ``Connection`` and ``Outbox``), by default 50 and then 200 cars on a fresh server
each, so 200 cars need no 200 processes on the measuring machine.

Prints the load average before and after, and PASS/MISSED for command -> acknowledged
p99 <= 50 ms at 50 cars (200 cars: reported, no target).

Run: ``.venv/bin/python bench/fleet.py [--cars 50] [--light [--light-procs 2]] [--duration 60]
[--heartbeat 1] [--command-rate 5] [--json]``. Exits 1 when fewer heartbeats were handled than 95 % of
the periodic ones (cars x duration / interval; a car also sends one at once after each
command that changes a setting, so the ratio may exceed 100 %) or a command was never
acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import light_cars
import psutil
import requests
import socketio

from drem.demo.car_process import CarProcess
from drem.demo.live_server import LiveServer
from drem.demo.processes import rss_bytes, wait_until


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(pct / 100 * len(ranked) + 0.5) - 1))]


class Observer:
    """A ``/fleet`` Socket.IO client (what the cars page gets) that counts pushes and
    timestamps the first ``acknowledged`` push of every command."""

    def __init__(self, url: str, token: str):
        self.sio = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.counting = False
        self.car_status = 0
        self.results = 0
        self.acked_at: dict[int, float] = {}
        self.sio.on("car_status", self._car_status, namespace="/fleet")
        self.sio.on("command_status", self._command_status, namespace="/fleet")
        self.sio.connect(url, headers={"Authorization": f"Bearer {token}"}, namespaces=["/fleet"],
                         transports=["websocket"], wait_timeout=10)

    def _car_status(self, _data) -> None:
        if self.counting:
            with self.lock:
                self.car_status += 1

    def _command_status(self, data) -> None:
        now = time.perf_counter()
        with self.lock:
            if self.counting and data.get("status") in ("acknowledged", "done", "failed"):
                self.results += 1
            if data.get("status") in ("acknowledged", "done") and data["id"] not in self.acked_at:
                self.acked_at[data["id"]] = now

    def close(self) -> None:
        """Disconnect."""
        self.sio.disconnect()


def run(args: argparse.Namespace, count: int) -> dict:
    """Run the benchmark with ``count`` cars; returns the figures."""
    work = Path(tempfile.mkdtemp(prefix="drem-bench-fleet-"))
    server = LiveServer(work / "instance", env={"CAR_OFFLINE_AFTER_S": "10"})
    cars: list[CarProcess] = []
    fleet = None
    observer = None
    try:
        server.start()
        operator = server.create_user("operator")
        print(f"server {server.url} (worker pid {server.worker_pid()}); activating {count} cars ...", flush=True)
        if args.light:
            light = [light_cars.activate(server.url, operator["token"], f"bench-{n:03d}") for n in range(count)]
            fleet = light_cars.LightFleet(server.url, light, work / "cars", heartbeat_s=args.heartbeat,
                                          procs=args.light_procs).start()
            ids = [car["car_id"] for car in light]
        else:
            for n in range(count):
                hostname = f"bench-{n:03d}"
                code = requests.post(server.url + "/api/fleet/activation-codes", json={"hostname": hostname},
                                     headers={"Authorization": f"Bearer {operator['token']}"},
                                     timeout=30).json()["code"]
                car = CarProcess(work / hostname, hostname, extra_args=["--log-level", "WARNING"])
                car.activate(server.url, code)
                config = json.loads(car.config_path.read_text())
                config["heartbeat_interval_s"] = args.heartbeat
                car.config_path.write_text(json.dumps(config))
                cars.append(car)
            for car in cars:
                car.start()
            ids = [car.car_id for car in cars]

        def all_online() -> bool:
            listed = requests.get(server.url + "/api/fleet/cars", timeout=30,
                                  headers={"Authorization": f"Bearer {operator['token']}"}).json()["cars"]
            return sum(c["online"] for c in listed) == len(ids)

        started = time.monotonic()
        wait_until(all_online, 120, "all cars online", 0.5)
        print(f"{len(ids)} {'light cars' if args.light else 'car client processes'} online after "
              f"{time.monotonic() - started:.1f} s", flush=True)
        time.sleep(2 * args.heartbeat)  # let the connect burst settle

        observer = Observer(server.url, operator["token"])
        worker = server.worker_pid()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {operator['token']}"
        sent_at: dict[int, float] = {}
        rng = random.Random(1)
        cpu0, rss0, t0 = cpu_seconds(worker), rss_bytes(worker), time.perf_counter()
        observer.counting = True
        next_command = t0
        while (now := time.perf_counter()) - t0 < args.duration:
            if args.command_rate > 0 and now >= next_command:
                begin = time.perf_counter()
                resp = session.post(server.url + "/api/fleet/commands", timeout=30, json={
                    "car_ids": [rng.choice(ids)], "type": "set_tail_light",
                    "params": {"colour": rng.choice(["red", "green", "blue", "white"])}})
                resp.raise_for_status()
                sent_at[resp.json()["commands"][0]["id"]] = begin
                next_command += 1.0 / args.command_rate
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        observer.counting = False
        cpu1, rss1 = cpu_seconds(worker), rss_bytes(worker)
        if sent_at:
            wait_until(lambda: all(i in observer.acked_at for i in sent_at), 15, "the last acknowledgements", 0.1)
        latencies = [(observer.acked_at[i] - t) * 1000 for i, t in sent_at.items() if i in observer.acked_at]
        handled = observer.car_status + observer.results
        expected_heartbeats = len(ids) * elapsed / args.heartbeat
        return {
            "cars": len(ids), "car_clients": (f"light cars in {args.light_procs} processes (car_client's Connection "
                                              "and Outbox, no vehicle)") if args.light
            else "real car_client daemon processes (standin vehicle)",
            "heartbeat_s": args.heartbeat, "duration_s": round(elapsed, 1),
            "messages_handled": handled, "messages_per_s": round(handled / elapsed, 1),
            "heartbeats_per_s": round(observer.car_status / elapsed, 1),
            "heartbeats_expected_per_s": round(expected_heartbeats / elapsed, 1),
            "heartbeats_vs_periodic_pct": round(100 * observer.car_status / expected_heartbeats, 1),
            "command_results_per_s": round(observer.results / elapsed, 1),
            "server_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 1),
            "server_rss_mb": round(rss1 / 2**20, 1), "server_rss_growth_mb": round((rss1 - rss0) / 2**20, 1),
            "commands_sent": len(sent_at), "commands_acknowledged": len(latencies),
            "ack_latency_ms_p50": round(percentile(latencies, 50), 1),
            "ack_latency_ms_p99": round(percentile(latencies, 99), 1),
            "ack_latency_ms_max": round(max(latencies), 1) if latencies else None,
            "ack_latency_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        }
    finally:
        if observer is not None:
            observer.close()
        if fleet is not None:
            fleet.stop()
        for car in cars:
            car.process.terminate()  # all at once; stop() below waits for each
        for car in cars:
            car.stop(timeout=10)
        server.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


#: command -> acknowledged p99 targets (ms) by number of cars (issue 20: <= 50 ms at 50 cars;
#: 200 cars are reported without a target).
ACK_TARGETS_MS = {50: 50.0}


def main() -> int:
    """Parse the command line, run, print the figures; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cars", type=int, nargs="+", default=None,
                        help="cars per run (default 50; with --light 50 and 200, a fresh server each)")
    parser.add_argument("--light", action="store_true",
                        help="light cars: many in --light-procs processes (bench/light_cars.py) instead of one "
                             "car daemon process per car")
    parser.add_argument("--light-procs", type=int, default=2, help="processes running the light cars (default 2)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat interval in seconds (default 1)")
    parser.add_argument("--command-rate", type=float, default=5.0, help="commands sent per second (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (car logs, server log)")
    args = parser.parse_args()
    counts = args.cars or ([50, 200] if args.light else [50])
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} cores)")
    ok = True
    results = []
    for count in counts:
        figures = run(args, count)
        results.append(figures)
        if args.json:
            print(json.dumps(figures))
        else:
            width = max(map(len, figures))
            for key, value in figures.items():
                print(f"{key:<{width}}  {value}")
        ok &= figures["heartbeats_vs_periodic_pct"] >= 95 and \
            figures["commands_acknowledged"] == figures["commands_sent"]
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          "(figures under a load average near the core count or above are not valid for the targets)")
    for figures in results:
        target = ACK_TARGETS_MS.get(figures["cars"])
        p99 = figures["ack_latency_ms_p99"]
        verdict = "no target" if target is None else ("PASS" if p99 <= target else "MISSED")
        ok &= target is None or p99 <= target
        print(f"{figures['cars']:4d} cars: command -> acknowledged p99 {p99} ms "
              f"[{verdict}{'' if target is None else f' <= {target:g} ms'}], heartbeats handled "
              f"{figures['heartbeats_vs_periodic_pct']} % of periodic")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
