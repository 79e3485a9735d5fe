"""``drem demo``: a whole event, end to end, with real processes.

Starts clamd, the server (gunicorn) and car clients with simulated cars on real
tracks; creates the event and racers through the API; each racer uploads a trained
demo model over HTTP (so it is virus-scanned); the operator loads the models onto
the cars and runs the races, whose laps the cars report by themselves. At the end
the leaderboard is checked against the cars' own lap logs.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from drem.demo import processes as px
from drem.demo.client import Api
from drem.platform.config import REPO_ROOT, demo_models_dir

DEMO_TRACKS = (("re:Invent 2018", "reinvent_base"), ("A to Z Speedway", "reInvent2019_wide"))
RACER_NAMES = ("Ada", "Kenji", "Lucia", "Mo", "Sofia", "Tariq", "Yara", "Ines", "Olu", "Wen")
COUNTRIES = ("GB", "JP", "ES", "EG", "SE", "DE", "BR", "PT", "NG", "CN")
ADMIN_PASSWORD = "drem-admin"
OPERATOR = ("demo.operator", "drem-operator")


@dataclass
class DemoOptions:
    """What ``drem demo`` runs. Speedup: simulated seconds per wall second for the cars."""

    racers: int = 3
    cars: int = 2
    speedup: float = 10.0
    laps: int = 3
    runs: int = 1
    instance: Path = REPO_ROOT / "instance" / "demo"
    models_dir: Path = field(default_factory=demo_models_dir)
    host: str = "127.0.0.1"
    port: int | None = None
    workers: int = 1
    database_url: str = ""
    redis_url: str = ""
    storage_url: str = ""
    scaleout: bool = False
    job_workers: int = 1
    keep_clamd: bool = True
    extra_env: dict = field(default_factory=dict)
    log: callable = print


@dataclass
class CarHandle:
    """One car of the demo: its process, folders and server id."""

    hostname: str
    track_id: int
    layout: str
    config: Path
    data_dir: Path
    proc: px.Proc | None = None
    car_id: int | None = None


class DemoEvent:
    """Runs one demo event; ``run()`` returns the summary (see :meth:`summary`)."""

    def __init__(self, opts: DemoOptions):
        self.opts = opts
        self.started = time.monotonic()
        self.server: px.Proc | None = None
        self.cluster = None
        self.scale = None
        self.clamd_rundir = None
        self.cars: list[CarHandle] = []
        self.url = ""
        self.event: dict = {}
        self.racers: list[dict] = []
        self.race_ids: list[int] = []
        self.errors: list[str] = []

    # ------------------------------------------------------------------ services
    def start_services(self) -> None:
        """clamd, database (``drem init``), and the server under gunicorn.

        One web process: gunicorn with ``workers`` gevent workers on the port. More than
        one (``--workers N``) or ``--scaleout``: N one-worker gunicorn processes behind
        HAProxy with sticky sessions (:mod:`drem.demo.scaleout`), as in production;
        ``--scaleout`` adds SeaweedFS (S3), a TCP clamd and ``drem worker`` processes.
        """
        from drem.demo.scaleout import ScaleoutServices, WebCluster

        o = self.opts
        o.instance.mkdir(parents=True, exist_ok=True)
        logs = o.instance / "logs"
        env = {"DATABASE_URL": o.database_url, "REDIS_URL": o.redis_url, "STORAGE_URL": o.storage_url,
               "CAR_OFFLINE_AFTER_S": "10"}
        if o.redis_url:
            # Redis pub/sub ignores the database number: each demo gets its own channel.
            env["SOCKETIO_CHANNEL"] = os.environ.get("SOCKETIO_CHANNEL") or f"drem-demo-{secrets.token_hex(4)}"
        if o.scaleout:
            self.scale = ScaleoutServices(o.instance, job_workers=o.job_workers)
            clamd_url = self.scale.start_clamd()
            if not o.storage_url:
                env.update(self.scale.start_storage())
            env["BACKGROUND_JOBS"] = "external"
        else:
            self.clamd_rundir = o.instance / "clamd"
            clamd_url = px.start_clamd(self.clamd_rundir)
        port = o.port or px.free_port()
        self.url = f"http://{'127.0.0.1' if o.host == '0.0.0.0' else o.host}:{port}"
        env.update({"CLAMD_URL": clamd_url, "PUBLIC_URL": self.url})
        clustered = o.scaleout or o.workers > 1
        if clustered:
            env["PROXY_HOPS"] = "1"
        self.env = px.server_env(o.instance, env | o.extra_env)
        px.drem_cli(["init", "--admin-password", ADMIN_PASSWORD], self.env)
        if clustered:
            self.cluster = WebCluster(max(o.workers, 2), port, self.env, logs, o.host).start()
            if o.scaleout:
                self.scale.start_workers(self.env, logs)
            o.log(f"{len(self.cluster.webs)} web processes ({', '.join(self.cluster.web_urls)}) behind HAProxy "
                  f"at {self.url}" + (f", {o.job_workers} drem worker(s), storage {self.env['STORAGE_URL']}"
                                      if o.scaleout else ""))
        else:
            self.server = px.server_proc(port, self.env, logs / "server.log", o.workers, o.host).start()
            px.wait_healthy(self.url, self.server)
        o.log(f"server up at {self.url} (clamd {clamd_url}"
              f"{', ' + _redacted(o.database_url) if o.database_url else ', SQLite'}"
              f"{', ' + o.redis_url if o.redis_url else ''})")

    def server_alive(self) -> bool:
        """True while the web server (or, clustered, the proxy and a web process) runs."""
        if self.cluster is not None:
            return self.cluster.alive()
        return self.server is not None and self.server.alive()

    # --------------------------------------------------------------------- event
    def setup_event(self) -> None:
        """Staff, the event with its tracks and fleets, racers who upload their models."""
        o = self.opts
        self.admin = Api.login(self.url, "admin", ADMIN_PASSWORD)
        for username, password, role in ((*OPERATOR, "operator"), ("demo.desk", "drem-desk", "registration")):
            self.admin.call("POST", "/api/users", expect=(201, 409),
                            json={"username": username, "password": password, "role": role})
        self.operator = Api.login(self.url, *OPERATOR)
        desk = Api.login(self.url, "demo.desk", "drem-desk")
        n_tracks = max(1, min(o.cars, len(DEMO_TRACKS)))
        self.event = self.operator.post("/api/events", {
            "name": f"drem Demo Cup {time.strftime('%H:%M')}", "date": date.today().isoformat(), "country_code": "DE",
            "race_time_min": 3, "resets_allowed_per_lap": 3, "ranking_method": "best_lap",
            "max_runs_per_racer": min(5, o.runs + 1),  # one run left for a race by hand
            "landing_links": [{"title": "Upload your model", "url": "/models/"}],
            "tracks": [{"name": name, "layout": layout, "leaderboard_title": "drem Demo Cup",
                        "leaderboard_footer": "Fastest valid lap wins"} for name, layout in DEMO_TRACKS[:n_tracks]]})
        self.fleets = [self.operator.post("/api/fleet/fleets", {"name": f"{track['name']} fleet {self.event['id']}",
                                                                 "track_id": track["id"]})
                       for track in self.event["tracks"]]
        models = self._demo_models()
        for i in range(o.racers):
            name = f"{RACER_NAMES[i % len(RACER_NAMES)]}{'' if i < len(RACER_NAMES) else i}"
            created = desk.post("/api/racers", {"username": f"{name}.{self.event['id']}",
                                                "country_code": COUNTRIES[i % len(COUNTRIES)]})
            racer_api = Api.with_code(self.url, created["sign_in_code"])
            racer_api.post(f"/api/events/{self.event['id']}/join")
            path = models[i % len(models)]
            with open(path, "rb") as fh:
                model = racer_api.call("POST", "/api/models", params={"filename": path.name, "event_id": self.event["id"]},
                                       data=fh, headers={"Content-Type": "application/octet-stream"})
            self.racers.append({"user": created["user"], "api": racer_api, "model_id": model["id"],
                                "model_file": path.name})
        for racer in self.racers:
            px.wait_for(lambda r=racer: self._model_ready(r), 300, f"the scan of {racer['model_file']}", 0.5)
        o.log(f"event {self.event['id']} with {len(self.racers)} racers; models scanned and available")

    def _model_ready(self, racer: dict) -> bool:
        model = racer["api"].get(f"/api/models/{racer['model_id']}")
        if model["status"] in ("invalid", "quarantined"):
            raise RuntimeError(f"demo model {racer['model_file']} is {model['status']}: {model['status_reason']}")
        return model["status"] == "available"

    def _demo_models(self) -> list[Path]:
        index = self.opts.models_dir / "demo_models.json"
        if not index.exists():
            raise RuntimeError(f"no demo models in {self.opts.models_dir}: run 'make models' first")
        listing = json.loads(index.read_text())
        files = []
        for entry in listing.get("models", []):
            for kind in ("tflite", "deepracer"):
                name = ((entry.get("files") or {}).get(kind) or {}).get("file")
                if name and (self.opts.models_dir / name).exists():
                    files.append(self.opts.models_dir / name)
        if not files:
            raise RuntimeError(f"{index} lists no model files")
        return files

    # ---------------------------------------------------------------------- cars
    def start_cars(self) -> None:
        """Activate each car client with a one-time code and start it on its track."""
        o = self.opts
        tracks = self.event["tracks"]
        for i in range(o.cars):
            track = tracks[i % len(tracks)]
            hostname = f"demo-car-{self.event['id']}-{i + 1}"
            folder = o.instance / "cars" / hostname
            car = CarHandle(hostname, track["id"], track["layout"], folder / "config.json", folder / "data")
            code = self.operator.post("/api/fleet/activation-codes",
                                      {"hostname": hostname, "fleet_id": self.fleets[i % len(tracks)]["id"]})["code"]
            px.activate_car(self.car_server_url(i), code, car.config, hostname)
            car.car_id = json.loads(car.config.read_text())["car_id"]
            car.proc = px.car_proc(hostname, car.config, car.data_dir, car.layout, o.speedup,
                                   folder / "car.log", seed=i + 1).start()
            self.cars.append(car)
        for car in self.cars:
            px.wait_for(lambda c=car: self._car(c)["online"], 60, f"{car.hostname} online")
        o.log(f"{len(self.cars)} cars online")

    def car_server_url(self, index: int) -> str:
        """The server URL car ``index`` is activated with (the drill puts a proxy in between)."""
        return self.url

    def _car(self, car: CarHandle) -> dict:
        return self.operator.get(f"/api/fleet/cars/{car.car_id}")

    # --------------------------------------------------------------------- races
    def run_races(self) -> None:
        """Every racer drives ``runs`` races; each track runs its races one after another,
        the tracks at the same time."""
        by_track: dict[int, list[CarHandle]] = {}
        for car in self.cars:
            by_track.setdefault(car.track_id, []).append(car)
        queues: dict[int, list[dict]] = {tid: [] for tid in by_track}
        track_ids = list(by_track)
        for _ in range(self.opts.runs):
            for i, racer in enumerate(self.racers):
                queues[track_ids[i % len(track_ids)]].append(racer)
        threads = [threading.Thread(target=self._track_loop, args=(tid, by_track[tid], queues[tid]), daemon=True)
                   for tid in track_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise RuntimeError("races failed:\n" + "\n".join(self.errors))

    def _track_loop(self, track_id: int, cars: list[CarHandle], queue: list[dict]) -> None:
        for n, racer in enumerate(queue):
            try:
                self._race(track_id, cars[n % len(cars)], racer)
            except Exception as exc:  # keep the other track going; reported at the end
                self.errors.append(f"track {track_id}, {racer['user']['username']}: {exc}")

    def _race(self, track_id: int, car: CarHandle, racer: dict) -> None:
        op, o = self.operator, self.opts
        state = op.post("/api/races", {"track_id": track_id, "racer_id": racer["user"]["id"], "car_id": car.car_id,
                                       "model_id": racer["model_id"]})
        rid = state["race_id"]
        self.race_ids.append(rid)
        px.wait_for(lambda: any(m["model_id"] == str(racer["model_id"]) for m in self._car(car)["loaded_models"]),
                    180, f"{racer['model_file']} on {car.hostname}", 0.3)
        op.post(f"/api/races/{rid}/start")
        o.log(f"race {rid}: {racer['user']['username']} on {car.hostname} ({car.layout}) started")
        per_lap_s = 90 / max(o.speedup, 0.1)
        state = px.wait_for(lambda: self._race_done(rid), 30 + o.laps * per_lap_s * 3, f"{o.laps} laps in race {rid}", 0.2)
        if state["status"] in ("running", "paused"):
            state = op.post(f"/api/races/{rid}/end")
        op.post(f"/api/races/{rid}/submit")
        best = state["best_lap_ms"]
        o.log(f"race {rid}: {racer['user']['username']} {len(state['laps'])} laps, best "
              f"{best / 1000 if best else '-'} s")

    def _race_done(self, rid: int):
        state = self.operator.get(f"/api/races/{rid}")
        return state if len(state["laps"]) >= self.opts.laps or state["status"] == "ended" else None

    # ------------------------------------------------------------------- results
    def wait_outboxes_empty(self, timeout_s: float = 60) -> None:
        """Wait until every car has delivered everything in its outbox."""
        def empty() -> bool:
            for car in self.cars:
                path = car.data_dir / "outbox.sqlite"
                if path.exists():
                    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                        if conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]:
                            return False
            return True

        px.wait_for(empty, timeout_s, "the cars' outboxes to drain", 0.5)

    def summary(self) -> dict:
        """Final leaderboard per track and the check against the cars' own lap logs.

        ``{"event_id", "leaderboards": {track name: [entries]}, "races", "laps", "resets",
        "seconds", "car_laps", "lost_laps", "doubled_laps", "leaderboard_matches_car_logs",
        "mismatches"}``
        """
        from drem.demo.report import compare_with_car_logs

        boards = {t["name"]: self.operator.get(f"/api/events/{self.event['id']}/leaderboard",
                                               params={"track": t["id"]})["entries"] for t in self.event["tracks"]}
        races = self.operator.get(f"/api/events/{self.event['id']}/races")["races"]
        check = compare_with_car_logs(self.operator, self.cars, races, boards, self.event)
        return {"event_id": self.event["id"], "url": self.url, "leaderboards": boards,
                "races": len(races), "laps": sum(len(r["laps"]) for r in races),
                "resets": sum(lap["resets"] for r in races for lap in r["laps"]),
                "seconds": round(time.monotonic() - self.started, 1)} | check

    def stop(self) -> None:
        """Stop the cars, then the server; clamd keeps running for the next demo unless
        ``keep_clamd`` is off (a headless demo in a temporary folder)."""
        for car in self.cars:
            if car.proc is not None:
                car.proc.stop()
        if self.server is not None:
            self.server.stop()
        if self.cluster is not None:
            self.cluster.stop()
        if self.scale is not None:
            self.scale.stop()
        if not self.opts.keep_clamd:
            if self.scale is not None and self.scale.clamd_rundir is not None:
                self.scale.restart_clamd("stop")
            elif self.clamd_rundir is not None:
                from drem.demo.scaleout import _script

                _script("clamd.sh", "stop", self.clamd_rundir)


def _redacted(url: str) -> str:
    """A database URL without its password."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split("@", 1)[0].split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url
