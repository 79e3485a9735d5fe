"""``drem demo``: a whole event, end to end, with real processes.

Starts clamd, the server (gunicorn) and car clients with simulated cars on real
tracks; creates the event and racers through the API; each racer uploads a trained
demo model over HTTP (so it is virus-scanned); the operator loads the models onto
the cars and runs the races, whose laps the cars report by themselves, except on the
first track: a lap-timer process times it from the cars' start-line crossings
(:class:`drem.demo.timer_process.DemoTrackTimer`). With ``--real-cars`` a "DeepRacer"
(console stand-in driving the simulator) also races there with a racer's DeepRacer
model, timed by that timer, and a Donkey Car drives without a race
(:mod:`drem.demo.real_cars`). At the end the leaderboard is checked against the cars'
own lap logs (the DeepRacer's: the stand-in's simulator lap log).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from drem.demo.client import Api
from drem.demo.launchers import (
    Clamd,
    activate_car,
    car_proc,
    drem_cli,
    server_env,
    server_proc,
    wait_healthy,
)
from drem.demo.processes import ManagedProcess, free_port, wait_until
from drem.demo.real_cars import (
    DeepRacerDemoCar,
    DonkeyDemoCar,
    drive_without_race,
    start_deepracer,
    start_donkey,
)
from drem.demo.report import compare_with_car_logs, format_summary
from drem.demo.scaleout import ScaleoutServices, WebCluster
from drem.demo.timer_process import DemoTrackTimer
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
    real_cars: bool = False  # also a "DeepRacer" and a Donkey Car through their backends (drem/demo/real_cars.py)
    lap_timer: bool = True  # the first track timed by a lap-timer process (its races then run in real time)
    job_workers: int = 1
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
    proc: ManagedProcess | None = None
    car_id: int | None = None


def outbox_empty(car: CarHandle) -> bool:
    """True when the car's durable outbox (``outbox.sqlite`` in its data folder) holds nothing."""
    path = car.data_dir / "outbox.sqlite"
    if not path.exists():
        return True
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        return not conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]


class DemoEvent:
    """Runs one demo event; ``run()`` returns the summary (see :meth:`summary`)."""

    def __init__(self, opts: DemoOptions):
        self.opts = opts
        self.started = time.monotonic()
        self.server: ManagedProcess | None = None
        self.cluster = None
        self.scale = None
        self.clamd: Clamd | None = None
        self.cars: list[CarHandle] = []
        self.real_cars: list[DeepRacerDemoCar | DonkeyDemoCar] = []
        self.url = ""
        self.event: dict = {}
        self.racers: list[dict] = []
        self.race_ids: list[int] = []
        self.errors: list[str] = []
        self.track_timer: DemoTrackTimer | None = None
        self.deepracer: CarHandle | None = None  # the "DeepRacer" as a racing car (--real-cars)
        self.deepracer_races: list[int] = []

    # ------------------------------------------------------------------ services
    def start_services(self) -> None:
        """clamd, database (``drem init``), and the server under gunicorn.

        One web process: gunicorn with ``workers`` gevent workers on the port. More than
        one (``--workers N``) or ``--scaleout``: N one-worker gunicorn processes behind
        HAProxy with sticky sessions (:mod:`drem.demo.scaleout`), as in production;
        ``--scaleout`` adds SeaweedFS (S3), a TCP clamd and ``drem worker`` processes.
        """
        o = self.opts
        o.instance.mkdir(parents=True, exist_ok=True)
        logs = o.instance / "logs"
        env = {"DATABASE_URL": o.database_url, "REDIS_URL": o.redis_url, "STORAGE_URL": o.storage_url,
               "CAR_OFFLINE_AFTER_S": "10"}
        if o.redis_url:
            # Redis pub/sub ignores the database number: each demo gets its own channel.
            env["SOCKETIO_CHANNEL"] = os.environ.get("SOCKETIO_CHANNEL") or f"drem-demo-{secrets.token_hex(4)}"
        self.clamd = Clamd(o.instance / "clamd", tcp=o.scaleout)
        clamd_url = self.clamd.start()
        if o.scaleout:
            self.scale = ScaleoutServices(o.instance, job_workers=o.job_workers)
            if not o.storage_url:
                env.update(self.scale.start_storage())
            env["BACKGROUND_JOBS"] = "external"
        port = o.port or free_port()
        self.url = f"http://{'127.0.0.1' if o.host == '0.0.0.0' else o.host}:{port}"
        env.update({"CLAMD_URL": clamd_url, "PUBLIC_URL": self.url})
        clustered = o.scaleout or o.workers > 1
        if clustered:
            env["PROXY_HOPS"] = "1"
        self.env = server_env(o.instance, env | o.extra_env)
        drem_cli(["init", "--admin-password", ADMIN_PASSWORD], self.env)
        if clustered:
            self.cluster = WebCluster(max(o.workers, 2), port, self.env, logs, o.host).start()
            if o.scaleout:
                self.scale.start_workers(self.env, logs)
            o.log(f"{len(self.cluster.webs)} web processes ({', '.join(self.cluster.web_urls)}) behind HAProxy "
                  f"at {self.url}" + (f", {o.job_workers} drem worker(s), storage {self.env['STORAGE_URL']}"
                                      if o.scaleout else ""))
        else:
            self.server = server_proc(port, self.env, logs / "server.log", o.workers, o.host).start()
            wait_healthy(self.url, self.server)
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
            # one run left for a race by hand (with --real-cars, one more for the DeepRacer's race)
            "max_runs_per_racer": min(5 + o.real_cars, o.runs + 1 + o.real_cars),
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
            wait_until(lambda r=racer: self._model_ready(r), 300, f"the scan of {racer['model_file']}", 0.5)
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
            activate_car(self.car_server_url(i), code, car.config, hostname)
            car.car_id = json.loads(car.config.read_text())["car_id"]
            car.proc = car_proc(hostname, car.config, car.data_dir, car.layout, o.speedup,
                                   folder / "car.log", seed=i + 1).start()
            self.cars.append(car)
        for car in self.cars:
            wait_until(lambda c=car: self._car(c)["online"], 60, f"{car.hostname} online", 0.2)
        if o.lap_timer or o.real_cars:  # the demo DeepRacer's laps come from the timer
            self.track_timer = DemoTrackTimer(self.operator, self.url, tracks[0]["id"], o.instance / "timer", o.laps)
            self.track_timer.start()  # after the assignment: stop() ends it whenever Ctrl-C comes
            o.log(f"{len(self.cars)} cars online; a lap timer times {tracks[0]['name']}")
        else:
            o.log(f"{len(self.cars)} cars online")
        if o.real_cars:  # issue 14: a DeepRacer racing on the timed track, a Donkey Car driving without a race
            deepracer = start_deepracer(self.operator, self.url, o.instance / "cars", self.event, o.speedup, o.log)
            self.real_cars.append(deepracer)
            self.deepracer = CarHandle(deepracer.hostname, tracks[0]["id"], tracks[0]["layout"], deepracer.config,
                                       deepracer.lap_log.parent, car_id=deepracer.car_id)
            donkey = start_donkey(self.operator, self.url, o.instance / "cars", self.event, o.log)
            self.real_cars.append(donkey)
            keras = next((r for r in self.racers if not r["model_file"].endswith(".tar.gz")), None)
            if keras is None:
                o.log(f"{donkey.hostname} stays parked: no racer has a Keras/tflite model")
            else:
                drive_without_race(self.operator, donkey.car_id, keras["model_id"], donkey.hostname, o.log)

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
        queues: dict[int, list[tuple[CarHandle, dict]]] = {tid: [] for tid in by_track}
        track_ids = list(by_track)
        for _ in range(self.opts.runs):
            for i, racer in enumerate(self.racers):
                tid = track_ids[i % len(track_ids)]
                queues[tid].append((by_track[tid][len(queues[tid]) % len(by_track[tid])], racer))
        if self.deepracer is not None:  # after the simulated cars' races on its (timed) track
            queues.setdefault(self.deepracer.track_id, []).append((self.deepracer, self._deepracer_racer()))
        threads = [threading.Thread(target=self._track_loop, args=(tid, queues[tid]), daemon=True)
                   for tid in queues]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise RuntimeError("races failed:\n" + "\n".join(self.errors))

    def _deepracer_racer(self) -> dict:
        """The racer who races the DeepRacer, with a DeepRacer model: the first racer who
        uploaded one; else the first racer uploads the demo's DeepRacer archive now."""
        for racer in self.racers:
            if racer["model_file"].endswith(".tar.gz"):
                return racer
        racer = self.racers[0]
        path = next((p for p in self._demo_models() if p.name.endswith(".tar.gz")), None)
        if path is None:
            raise RuntimeError(f"no DeepRacer archive among the demo models in {self.opts.models_dir}")
        with open(path, "rb") as fh:
            model = racer["api"].call("POST", "/api/models", params={"filename": path.name,
                                                                     "event_id": self.event["id"]},
                                      data=fh, headers={"Content-Type": "application/octet-stream"})
        entry = {**racer, "model_id": model["id"], "model_file": path.name}
        wait_until(lambda: self._model_ready(entry), 300, f"the scan of {path.name}", 0.5)
        return entry

    def _track_loop(self, track_id: int, queue: list[tuple[CarHandle, dict]]) -> None:
        for car, racer in queue:
            try:
                self._race(track_id, car, racer)
            except Exception as exc:  # keep the other track going; reported at the end
                self.errors.append(f"track {track_id}, {racer['user']['username']}: {exc}")

    def _race(self, track_id: int, car: CarHandle, racer: dict) -> None:
        op, o = self.operator, self.opts
        state = op.post("/api/races", {"track_id": track_id, "racer_id": racer["user"]["id"], "car_id": car.car_id,
                                       "model_id": racer["model_id"]})
        rid = state["race_id"]
        self.race_ids.append(rid)
        if car is self.deepracer:
            self.deepracer_races.append(rid)
        wait_until(lambda: any(m["model_id"] == str(racer["model_id"]) for m in self._car(car)["loaded_models"]),
                    180, f"{racer['model_file']} on {car.hostname}", 0.3)
        timed = self.track_timer is not None and self.track_timer.track_id == track_id
        if timed:  # the car is on the line: the timer's first crossing starts the race
            self.track_timer.start_race(rid, car.data_dir / "laps.jsonl")
        else:
            op.post(f"/api/races/{rid}/start")
        o.log(f"race {rid}: {racer['user']['username']} on {car.hostname} ({car.layout}) started"
              + (" by the lap timer" if timed else ""))
        per_lap_s = 90 / max(o.speedup, 0.1) if not timed else 90
        state = wait_until(lambda: self._race_done(rid), 30 + o.laps * per_lap_s * 3, f"{o.laps} laps in race {rid}", 0.2)
        if timed:
            self.track_timer.end_race()
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
        wait_until(lambda: all(outbox_empty(car) for car in self.cars), timeout_s,
                   "the cars' outboxes to drain", 0.5)

    def summary(self) -> dict:
        """Final leaderboard per track and the check against the cars' own lap logs.

        ``{"event_id", "leaderboards": {track name: [entries]}, "races", "laps", "resets",
        "seconds", "car_laps", "lost_laps", "doubled_laps", "leaderboard_matches_car_logs",
        "mismatches"}``
        """
        boards = {t["name"]: self.operator.get(f"/api/events/{self.event['id']}/leaderboard",
                                               params={"track": t["id"]})["entries"] for t in self.event["tracks"]}
        races = self.operator.get(f"/api/events/{self.event['id']}/races")["races"]
        check = compare_with_car_logs(self.operator, self.cars, races, boards, self.event,
                                      self.track_timer.timed if self.track_timer else None,
                                      self.deepracer_races,
                                      self.track_timer.late_ms() if self.track_timer else None)
        return {"event_id": self.event["id"], "url": self.url, "leaderboards": boards,
                "races": len(races), "laps": sum(len(r["laps"]) for r in races),
                "resets": sum(lap["resets"] for r in races for lap in r["laps"]),
                "seconds": round(time.monotonic() - self.started, 1)} | check

    def stop(self) -> None:
        """Stop every process the demo started: the cars, the web server(s), the scale-out
        services, and clamd when the demo started it (one that ran before is left alone).
        Each gets SIGTERM, then SIGKILL of its whole process tree."""
        for real_car in self.real_cars:
            real_car.stop()
        for car in self.cars:
            if car.proc is not None:
                car.proc.stop()
        if self.track_timer is not None:
            self.track_timer.stop()
        if self.server is not None:
            self.server.stop()
        if self.cluster is not None:
            self.cluster.stop()
        if self.scale is not None:
            self.scale.stop()
        if self.clamd is not None:
            self.clamd.stop()

    def report(self, summary: dict, echo) -> None:
        """Print the summary with ``echo`` and write ``demo_summary.json`` to the demo folder."""
        echo("\n" + format_summary(summary))
        (self.opts.instance / "demo_summary.json").write_text(json.dumps(summary, indent=2))
        echo(f"\nsummary: {self.opts.instance / 'demo_summary.json'}")


class DemoSetupError(RuntimeError):
    """The demo cannot run with these settings; the message says why and what to do."""


def demo_options(*, headless: bool, instance: Path | None = None, models_dir: Path | None = None,
                 port: int | None = None, reset_database: bool = False, log=print, **choices) -> DemoOptions:
    """The :class:`DemoOptions` of a ``drem demo`` run, with its surroundings made ready.

    ``choices`` are further :class:`DemoOptions` fields (racers, cars, speedup, laps, runs,
    host, workers, scaleout, job_workers). DATABASE_URL, REDIS_URL and STORAGE_URL come
    from the environment. Builds the demo models into ``models_dir`` (default
    :func:`drem.platform.config.demo_models_dir`) when none are there (minutes, once);
    ``instance`` defaults to a new temporary folder when ``headless``, else
    ``instance/demo``; ``port`` to a free one when ``headless``, else 5000. With
    ``reset_database`` the PostgreSQL database is created or emptied first.
    Raises :class:`DemoSetupError` for settings that cannot work.
    """
    env = os.environ
    scaleout, workers = choices.get("scaleout", False), choices.get("workers", 1)
    if (workers > 1 or scaleout) and not env.get("REDIS_URL"):
        raise DemoSetupError("more than one web process needs REDIS_URL")
    if scaleout and not env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        raise DemoSetupError("--scaleout runs on PostgreSQL: set DATABASE_URL=postgresql://…")
    models_dir = models_dir or demo_models_dir()
    if not (models_dir / "demo_models.json").exists():
        log(f"building the demo models into {models_dir} (a few minutes, once)")
        subprocess.run([sys.executable, "-m", "car_client.training.demo_models", "--out", str(models_dir)],
                       check=True)
    if instance is None:
        instance = Path(tempfile.mkdtemp(prefix="drem-demo-")) if headless else REPO_ROOT / "instance" / "demo"
    if reset_database:
        reset_postgres(env.get("DATABASE_URL", ""))
    return DemoOptions(instance=instance, models_dir=models_dir, port=port or (None if headless else 5000),
                       database_url=env.get("DATABASE_URL", ""), redis_url=env.get("REDIS_URL", ""),
                       storage_url=env.get("STORAGE_URL", ""), log=log, **choices)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def run_demo(demo: DemoEvent, headless: bool, echo=print) -> dict | None:
    """Run ``demo`` from start to summary; unless ``headless`` keep serving until Ctrl-C.

    Ctrl-C (SIGINT) or SIGTERM at any point ends the run; either way every process the
    demo started is stopped before this returns (further signals are ignored while it
    stops them). Returns the summary, or None when the run did not get that far.
    """
    summary = None
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        demo.start_services()
        demo.setup_event()
        echo(f"\nLeaderboard: {demo.url}/events/{demo.event['id']}/leaderboard   "
             f"(operator {OPERATOR[0]} / {OPERATOR[1]}, admin admin / {ADMIN_PASSWORD})\n")
        sys.stdout.flush()
        demo.start_cars()
        demo.run_races()
        demo.wait_outboxes_empty()
        summary = demo.summary()
        demo.report(summary, echo)
        if not headless:
            echo(f"\nServing {demo.url} until Ctrl-C. Log in as {OPERATOR[0]} / {OPERATOR[1]} and open "
                 f"the timekeeper to run another race by hand; the cars are still connected.")
            while demo.server_alive():
                time.sleep(1)
    except KeyboardInterrupt:
        echo("\nstopping the demo's processes")
    finally:
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        try:
            demo.stop()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    return summary


def summary_failed(summary: dict | None) -> bool:
    """True when the demo did not finish, lost or doubled a lap, the leaderboard disagrees
    with the cars, or (a fault drill) the drill failed."""
    return summary is None or bool(summary["lost_laps"] or summary["doubled_laps"]
                                   or not summary["leaderboard_matches_car_logs"] or summary.get("drill_failed"))


def reset_postgres(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if missing, else drop every table in it.
    :class:`DemoSetupError` when ``url`` is not a PostgreSQL URL."""
    if not url.startswith(("postgres://", "postgresql")):
        raise DemoSetupError("--reset-database needs a PostgreSQL DATABASE_URL")
    url = url.replace("postgres://", "postgresql+psycopg://", 1).replace("postgresql://", "postgresql+psycopg://", 1)
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = sa.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    if exists:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


def _redacted(url: str) -> str:
    """A database URL without its password."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split("@", 1)[0].split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url
