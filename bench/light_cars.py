"""Light simulated cars: many cars in one or two processes, each speaking the real car
protocol through the car daemon's own connection code (``car_client.daemon.connection.
Connection``: Socket.IO ``/car`` with the car token, heartbeats with acks, a durable
``Outbox`` sending ``lap`` and ``command_result`` until the server acknowledges them).

What a light car leaves out is the vehicle and the model: a command is answered
``acknowledged`` at once and ``done`` right after (a tail light or max speed set, a model
"loaded"), ``start_driving`` makes the car report a lap every ``lap_s`` seconds into its
outbox until ``stop_driving``. The heartbeat carries the fields of a real car's
(``car_client.daemon.daemon.CarDaemon.heartbeat_payload``) with a simulated vehicle's values.

Used by ``bench/fleet.py --light`` and ``bench/soak.py``. A car's lap log (the laps it
reported, by lap id) is written to ``<folder>/<hostname>/laps.jsonl`` so a benchmark can
check every lap was stored exactly once.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import threading
import time
import uuid
from pathlib import Path

import requests

from car_client.daemon.connection import Connection
from car_client.daemon.outbox import Outbox


def activate(server_url: str, token: str, hostname: str) -> dict:
    """Activate one car through the API as the daemon does (an operator's ``token`` makes
    the one-time code); returns ``{"hostname", "car_id", "token"}``."""
    code = requests.post(server_url + "/api/fleet/activation-codes", json={"hostname": hostname},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    code.raise_for_status()
    answer = requests.post(server_url + "/api/car/activate", timeout=30,
                           json={"code": code.json()["code"], "hostname": hostname, "software_version": "light"})
    answer.raise_for_status()
    body = answer.json()
    return {"hostname": hostname, "car_id": body["car_id"], "token": body["token"]}


class LightCar:
    """One simulated car: a real ``Connection`` and ``Outbox``, no vehicle, no model."""

    def __init__(self, server_url: str, car: dict, folder: Path, heartbeat_s: float, lap_s: float,
                 always_drive: bool = False):
        self.car, self.lap_s = car, lap_s
        self.folder = folder / car["hostname"]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(self.folder / "outbox.sqlite")
        self.tail_light, self.max_speed, self.models = "white", 1.0, []
        self.race_id: int | None = None
        self.driving = threading.Event()
        if always_drive:
            self.driving.set()
        self.laps = 0
        self.conn = Connection(server_url, car["token"], self.outbox, self.on_command, self.heartbeat,
                               heartbeat_interval_s=heartbeat_s, transports=["websocket"],
                               thread_prefix=car["hostname"])

    def heartbeat(self) -> dict:
        """The heartbeat a simulated car sends (state driving or idle)."""
        return {"state": "driving" if self.driving.is_set() else ("ready" if self.models else "idle"),
                "battery_pct": 80, "hostname": self.car["hostname"], "software_version": "light",
                "max_speed_mps": self.max_speed, "tail_light": self.tail_light, "models": self.models,
                "model_in_use": None, "error": None, "model_formats": ["deepracer", "keras", "tflite"]}

    def result(self, command_id: str, status: str) -> None:
        rid = uuid.uuid4().hex
        self.outbox.put("command_result", {"result_id": rid, "command_id": command_id, "status": status,
                                           "reason": None, "progress": None}, entry_id=rid)

    def on_command(self, message: dict) -> None:
        """Answer a command as the daemon does: acknowledged at once, then done."""
        command_id, kind = message.get("command_id"), message.get("type")
        params = message.get("params") or {}
        if not command_id:
            return
        self.result(command_id, "acknowledged")
        if kind == "set_tail_light":
            self.tail_light = params.get("colour", self.tail_light)
        elif kind == "set_max_speed":
            self.max_speed = params.get("max_speed_mps", self.max_speed)
        elif kind == "load_model":
            self.models.append({"model_id": str(params.get("model_id")), "format": "deepracer"})
        elif kind == "start_driving":
            self.race_id = params.get("race_id")
            self.driving.set()
        elif kind in ("stop_driving", "emergency_stop"):
            self.driving.clear()
        self.result(command_id, "done")
        self.conn.heartbeat_now()

    def drive(self, stop: threading.Event) -> None:
        """While driving, report a lap every ``lap_s`` (+- 10 %) into the outbox and the lap log."""
        rnd = random.Random(self.car["car_id"])
        log = (self.folder / "laps.jsonl").open("a")
        while not stop.is_set():
            if not self.driving.wait(0.2):
                continue
            ms = int(self.lap_s * 1000 * rnd.uniform(0.9, 1.1))
            if stop.wait(ms / 1000) or not self.driving.is_set():
                continue
            self.laps += 1
            lap_id = uuid.uuid4().hex
            payload = {"lap_id": lap_id, "model_id": "1", "lap_time_ms": ms, "resets": 0,
                       "lap_number": self.laps, "finished_at": time.time(), "race_id": self.race_id}
            self.outbox.put("lap", payload, entry_id=lap_id)
            log.write(json.dumps({"lap_id": lap_id, "race_id": self.race_id, "time_ms": ms}) + "\n")
            log.flush()
        log.close()


def run_cars(server_url: str, cars: list[dict], folder: str, heartbeat_s: float, lap_s: float, always_drive: bool,
             stop, ready) -> None:
    """Process body: start every car, tell ``ready``, run until ``stop`` is set, then
    flush the outboxes (up to 10 s) and stop."""
    flag = threading.Event()
    fleet = [LightCar(server_url, car, Path(folder), heartbeat_s, lap_s, always_drive) for car in cars]
    drivers = []
    for car in fleet:
        car.conn.start()
        thread = threading.Thread(target=car.drive, args=(flag,), daemon=True)
        thread.start()
        drivers.append(thread)
    ready.put(len(fleet))
    stop.wait()
    flag.set()
    for car in fleet:
        car.conn.flush(10)
        car.conn.stop(2)
        car.outbox.close()


class LightFleet:
    """``cars`` light cars spread over ``procs`` processes (fork); ``always_drive``: every
    car drives laps from the start (they stay in the car's lap log when it races in no race)."""

    def __init__(self, server_url: str, cars: list[dict], folder: Path, heartbeat_s: float = 1.0,
                 lap_s: float = 10.0, procs: int = 2, always_drive: bool = False):
        ctx = mp.get_context("fork")
        self.stop_event, self.ready = ctx.Event(), ctx.Queue()
        shares = [cars[i::procs] for i in range(procs)]
        self.procs = [ctx.Process(target=run_cars, args=(server_url, share, str(folder), heartbeat_s, lap_s,
                                                         always_drive, self.stop_event, self.ready), daemon=True)
                      for share in shares if share]

    def start(self, timeout_s: float = 60) -> LightFleet:
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            self.ready.get(timeout=timeout_s)
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid]

    def stop(self, timeout_s: float = 30) -> None:
        """Flush the cars' outboxes and stop the processes (killed after ``timeout_s``)."""
        self.stop_event.set()
        for proc in self.procs:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()


def reported_laps(folder: Path) -> dict[str, dict]:
    """Every lap the light cars under ``folder`` reported: ``{lap_id: {"race_id", "time_ms"}}``."""
    out = {}
    for path in folder.glob("*/laps.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out[row["lap_id"]] = row
    return out
