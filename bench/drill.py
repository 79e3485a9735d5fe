"""The fault drill: a demo event during which things break, checked lap by lap.

A test tool, not part of the ``drem`` package (the Docker image does not ship it).
Run from the repository root (``make demo-drill``)::

    .venv/bin/python bench/drill.py [--outage S] [--racers N] [--cars M] [--speedup K] [--scaleout] ...

While the races run:

1. **network cut** - each car talks to the server through its own small TCP relay
   (:class:`CutRelay`); the drill cuts one car's relay for ``outage_s`` seconds
   (30 by default). During a cut nothing passes in either direction and new
   connections are held, like a Wi-Fi link that drops packets: the car keeps driving
   on its own clock, its laps wait in its durable outbox, Socket.IO's ping timeout
   ends the stalled connection on both sides, and when the link comes back the car
   reconnects and delivers. (SIGSTOP on the car would also freeze its driving clock,
   which is not what a network outage does.)
2. **web worker crash** - SIGKILL to a gunicorn worker (with ``--workers N`` or
   ``--scaleout``: the worker of the first web process; HAProxy re-dispatches its
   clients). Its gunicorn master starts a new worker; the cars reconnect.
3. **car client crash** - SIGKILL to one car client's process group and a restart
   with the same config and data folder, as a watchdog would do; the operator then
   sends ``start_driving`` again (the race is still running on the server).
4. **clamd restart** - clamd is stopped, a racer uploads another model (it must wait
   in ``scanning``, never be marked clean without a verdict), clamd is started
   again, and the model is scanned.

At the end the usual check runs (every lap in the cars' own logs stored exactly
once, the leaderboard equal to the one computed from those logs) and the drill
prints its figures: laps driven and stored, lost, doubled, outage durations and
recovery times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from drem.demo.launchers import healthy
from drem.demo.processes import child_pids, wait_until
from drem.demo.report import car_log
from drem.demo.runner import (
    CarHandle,
    DemoEvent,
    DemoOptions,
    DemoSetupError,
    demo_options,
    outbox_empty,
    run_demo,
    summary_failed,
)

LAP_SIM_S = 11.0


class CutRelay:
    """A TCP relay on 127.0.0.1:<port> to ``target`` whose traffic can be cut and restored."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, name=f"relay-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Stop relaying: nothing passes until :meth:`restore`."""
        self._open.clear()

    def restore(self) -> None:
        """Relay again (held data and held connections go on)."""
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self.listener.close()
        with self._lock:
            for conn in list(self._conns):
                _close(conn)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.wait()  # a connection attempt during a cut hangs, as with a dead link
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._conns.update((client, upstream))
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self._open.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._open.wait()  # read just before a cut: held, not delivered during it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _close(s)
                with self._lock:
                    self._conns.discard(s)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _parse_time(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


class DrillEvent(DemoEvent):
    """A :class:`DemoEvent` whose cars go through :class:`CutRelay` and which runs the
    faults of the module docstring while the races run. ``summary()["drill"]`` holds
    the figures."""

    def __init__(self, opts: DemoOptions, outage_s: float = 30.0):
        # A demo lap takes about 11-12 simulated seconds on the demo tracks. The races must
        # last long enough that every fault falls inside one, with laps after it.
        lap_wall_s = LAP_SIM_S / max(opts.speedup, 0.1)
        opts.laps = max(opts.laps, math.ceil((max(outage_s, 12) + 15) / lap_wall_s))
        super().__init__(opts)
        self.outage_s = outage_s
        self.relays: list[CutRelay] = []
        self.faults: list[dict] = []
        self.drill_errors: list[str] = []
        self._drill_thread: threading.Thread | None = None

    # ---------------------------------------------------------------- wiring
    def car_server_url(self, index: int) -> str:
        host, port = self.url.split("//", 1)[1].rsplit(":", 1)
        relay = CutRelay(host, int(port))
        self.relays.append(relay)
        return relay.url

    def run_races(self) -> None:
        self._drill_thread = threading.Thread(target=self._drill, name="drill", daemon=True)
        self._drill_thread.start()
        try:
            super().run_races()
        finally:
            self._drill_thread.join(timeout=max(60, self.outage_s * 3))
        if self._drill_thread.is_alive():
            self.drill_errors.append("the drill did not finish while the races ran")

    def stop(self) -> None:
        super().stop()
        for relay in self.relays:
            relay.close()

    # ---------------------------------------------------------------- faults
    def _drill(self) -> None:
        """The network cut runs beside the rest; the other faults one after another, so
        each recovery time belongs to one fault."""
        try:
            wait_until(self._some_lap_stored, 120, "the first stored lap", 0.2)
            cut = threading.Thread(target=self._guard, args=(self._network_cut,), daemon=True)
            cut.start()
            time.sleep(2)
            self._guard(self._worker_crash)
            self._guard(self._car_crash)
            self._guard(self._clamd_restart)
            cut.join()
        except Exception as exc:  # noqa: BLE001 - reported in the figures and fails the drill
            self.drill_errors.append(f"drill: {exc}")
        self.faults.sort(key=lambda f: f["at_s"])

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one fault's failure must not hide the others
            self.drill_errors.append(f"{fn.__name__.strip('_')}: {exc}")
            self.opts.log(f"DRILL ERROR in {fn.__name__.strip('_')}: {exc}")

    def _some_lap_stored(self) -> bool:
        return any(self.operator.get(f"/api/races/{rid}")["laps"] for rid in list(self.race_ids))

    def _network_cut(self) -> None:
        car, relay = self.cars[-1], self.relays[-1]
        laps_before = _log_lines(car)
        t0 = time.time()
        relay.cut()
        self.opts.log(f"DRILL: network of {car.hostname} cut for {self.outage_s:.0f} s")
        time.sleep(self.outage_s)
        relay.restore()
        t1 = time.time()
        driven = _log_lines(car) - laps_before
        seen = wait_until(lambda: self._seen_after(car, t1), 90, f"{car.hostname} back after the cut", 0.2)
        wait_until(lambda: outbox_empty(car), 90, f"{car.hostname} delivering its outbox", 0.2)
        t2 = time.time()
        self._fault("network cut", car.hostname, t0, t1, {"heartbeat_after_s": round(seen - t1, 1),
                                                         "outbox_delivered_after_s": round(t2 - t1, 1),
                                                         "laps_driven_during_cut": driven})

    def _worker_crash(self) -> None:
        if self.cluster is not None:
            web = self.cluster.webs[0]
            where = f"{web.name} ({self.cluster.web_urls[0]})"
            master = web.pid
        else:
            where, master = "the gunicorn server", self.server.pid
        old = child_pids(master)
        if not old:
            raise RuntimeError(f"no gunicorn worker under pid {master}")
        t0 = time.time()
        os.kill(old[0], signal.SIGKILL)
        self.opts.log(f"DRILL: SIGKILL to gunicorn worker {old[0]} of {where}")
        new = wait_until(lambda: [p for p in child_pids(master) if p not in old], 60, "a new gunicorn worker", 0.05)
        base = self.cluster.web_urls[0] if self.cluster is not None else self.url
        wait_until(lambda: healthy(base), 60, f"{base}/healthz after the crash", 0.05)
        t1 = time.time()
        wait_until(lambda: healthy(self.url), 60, "the public URL", 0.05)
        cars_back = {c.hostname: round(wait_until(lambda c=c: self._seen_after(c, t1), 90,
                                                   f"{c.hostname} after the crash", 0.2) - t0, 1)
                     for c in self.cars[:-1]}  # the last car may be cut off by the network drill
        self._fault("gunicorn worker SIGKILL", where, t0, t1,
                    {"new_worker_pid": new[0], "server_answering_after_s": round(t1 - t0, 1),
                     "cars_heartbeat_after_s": cars_back})

    def _car_crash(self) -> None:
        car = self.cars[0]
        race = self._running_race(car)
        t0 = time.time()
        car.proc.kill9()
        self.opts.log(f"DRILL: SIGKILL to car client {car.hostname}; restarting it in 2 s")
        time.sleep(2)
        car.proc.start()  # the same command, config and data folder
        t1 = time.time()
        seen = wait_until(lambda: self._seen_after(car, t1), 90, f"{car.hostname} back after its restart", 0.2)
        extra = {"heartbeat_after_restart_s": round(seen - t1, 1)}
        race = self._running_race(car) or race
        if race is not None and self.operator.get(f"/api/races/{race['race_id']}")["status"] == "running":
            laps_then = len(self.operator.get(f"/api/races/{race['race_id']}")["laps"])
            self.operator.post("/api/fleet/commands", {"car_ids": [car.car_id], "type": "start_driving",
                                                       "params": {"model_id": race["model_id"]}})
            t2 = wait_until(lambda: len(self.operator.get(f"/api/races/{race['race_id']}")["laps"]) > laps_then
                             and time.time(), 180, f"a new lap from {car.hostname}", 0.2)
            extra |= {"race": race["race_id"], "next_lap_after_restart_s": round(t2 - t1, 1)}
        self._fault("car client SIGKILL + restart", car.hostname, t0, t1, extra)

    def _clamd_restart(self) -> None:
        racer = self.racers[0]
        t0 = time.time()
        self.clamd.take_over()  # stopped and started by the drill even if it ran before the demo
        self.clamd.stop()
        try:
            self.opts.log("DRILL: clamd stopped; a racer uploads a model meanwhile")
            path = self.opts.models_dir / racer["model_file"]
            with open(path, "rb") as fh:
                model = racer["api"].call("POST", "/api/models",
                                          params={"filename": f"drill-{path.name}", "event_id": self.event["id"]},
                                          data=fh, headers={"Content-Type": "application/octet-stream"})
            time.sleep(3)
            waiting = racer["api"].get(f"/api/models/{model['id']}")["status"]
        finally:
            self.clamd.start()
        t1 = time.time()
        if waiting != "scanning":
            raise RuntimeError(f"a model uploaded while clamd was down is {waiting!r}, not 'scanning'")
        status = wait_until(lambda: (m := racer["api"].get(f"/api/models/{model['id']}"))["status"] != "scanning"
                             and m["status"], 120, "the scan after clamd came back", 0.2)
        t2 = time.time()
        if status != "available":
            raise RuntimeError(f"the drill model ended {status!r}")
        self._fault("clamd restart", "clamd", t0, t1, {"model_status_while_down": waiting,
                                                       "scanned_after_clamd_back_s": round(t2 - t1, 1)})

    # ---------------------------------------------------------------- helpers
    def _fault(self, kind: str, target: str, t0: float, t1: float, extra: dict) -> None:
        entry = {"fault": kind, "target": target, "at_s": round(t0 - self.started_wall, 1),
                 "outage_s": round(t1 - t0, 1)} | extra
        self.faults.append(entry)
        self.opts.log(f"DRILL: {kind} on {target}: {json.dumps(extra)}")

    @property
    def started_wall(self) -> float:
        return time.time() - (time.monotonic() - self.started)

    def _seen_after(self, car: CarHandle, t: float) -> float | None:
        seen = _parse_time(self._car(car).get("last_seen_at"))
        return seen if seen > t else None

    def _running_race(self, car: CarHandle) -> dict | None:
        for rid in reversed(list(self.race_ids)):
            state = self.operator.get(f"/api/races/{rid}")
            if state.get("car_id") == car.car_id and state["status"] == "running":
                return state
        return None

    def summary(self) -> dict:
        out = super().summary()
        stored = 0
        for car in self.cars:
            ids = {lap["lap_id"] for lap in self.operator.get(f"/api/fleet/cars/{car.car_id}/laps",
                                                              params={"limit": 10000})["laps"]}
            stored += sum(1 for lap in _log(car) if lap.get("lap_id") in ids)
        out["drill"] = {"laps_driven": out["car_laps"], "laps_stored": stored, "lost_laps": out["lost_laps"],
                        "doubled_laps": out["doubled_laps"],
                        "leaderboard_matches_car_logs": out["leaderboard_matches_car_logs"],
                        "faults": self.faults, "errors": self.drill_errors}
        out["drill_failed"] = bool(self.drill_errors) or len(self.faults) < 4
        return out

    def report(self, summary: dict, echo) -> None:
        """The demo's report, then the drill's figures, also written to ``drill.json``."""
        super().report(summary, echo)
        echo("\n" + format_drill(summary["drill"]))
        (self.opts.instance / "drill.json").write_text(json.dumps(summary["drill"], indent=2))


def _log(car: CarHandle) -> list[dict]:
    return car_log(car.data_dir)


def _log_lines(car: CarHandle) -> int:
    return len(_log(car))


def format_drill(drill: dict) -> str:
    """The drill's figures as printed by ``bench/drill.py``."""
    lines = ["Fault drill",
             f"  laps driven (cars' logs) {drill['laps_driven']} · laps stored {drill['laps_stored']} · "
             f"lost {drill['lost_laps']} · doubled {drill['doubled_laps']} · leaderboard matches the cars' logs: "
             f"{'yes' if drill['leaderboard_matches_car_logs'] else 'NO'}"]
    for f in drill["faults"]:
        rest = {k: v for k, v in f.items() if k not in ("fault", "target", "at_s", "outage_s")}
        lines.append(f"  at {f['at_s']:>6} s  {f['fault']:<30} {f['target']:<24} outage {f['outage_s']:>5} s  "
                     + " ".join(f"{k}={v}" for k, v in rest.items()))
    for err in drill["errors"]:
        lines.append(f"  ERROR {err}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python bench/drill.py [options]``: the fault drill during a headless demo event;
    exit status 1 when a lap was lost or doubled or a fault was not survived."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds a car's network is cut (default 30)")
    parser.add_argument("--racers", type=int, default=2)
    parser.add_argument("--cars", type=int, default=2)
    parser.add_argument("--speedup", type=float, default=10.0, help="simulated seconds per wall second")
    parser.add_argument("--laps", type=int, default=3, help="laps per race (raised to outlast the faults)")
    parser.add_argument("--runs", type=int, default=1, help="races per racer")
    parser.add_argument("--workers", type=int, default=1, help="web processes (more than one needs REDIS_URL)")
    parser.add_argument("--scaleout", action="store_true", help="the scale-out stack (PostgreSQL, Redis, S3, …)")
    parser.add_argument("--job-workers", type=int, default=1, help="drem worker processes with --scaleout")
    parser.add_argument("--instance", type=Path, default=None, help="demo folder (default: a temporary one)")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: drem's demo model cache")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--reset-database", action="store_true",
                        help="PostgreSQL only: create the DATABASE_URL database if missing, else empty it")
    parser.add_argument("--lap-timer", action="store_true",
                        help="time the first track by a lap-timer process, as the demo does (its races then run in "
                             "real time, not --speedup: the drill takes minutes longer)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        opts = demo_options(headless=True, instance=args.instance, models_dir=args.models_dir, port=args.port,
                            reset_database=args.reset_database, log=log, racers=args.racers, cars=args.cars,
                            speedup=args.speedup, laps=args.laps, runs=args.runs, workers=args.workers,
                            scaleout=args.scaleout, job_workers=args.job_workers, lap_timer=args.lap_timer)
    except DemoSetupError as exc:
        parser.error(str(exc))
    summary = run_demo(DrillEvent(opts, outage_s=args.outage), headless=True, echo=print)
    return 1 if summary_failed(summary) else 0


if __name__ == "__main__":
    sys.exit(main())
