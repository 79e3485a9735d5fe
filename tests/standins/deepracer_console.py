"""A stand-in for the AWS DeepRacer device console: the hardware edge of the DeepRacer backend.

It follows ``aws-deepracer/aws-deepracer-webserver-pkg`` (Apache-2.0, commit 43e05a71,
``webserver_pkg/webserver_pkg/``) route by route: same paths, methods, payloads and
answers; Flask-WTF ``CSRFProtect`` as in ``webserver.py``; the ``deepracer_token``
cookie of ``login.py`` (one hour) checked on every ``/api/`` route as nginx's
``auth_request`` to ``/auth`` does; HTTPS with a self-signed certificate made by
``openssl`` (as the car's nginx has). What happens on the car behind the routes (the
ROS services: model optimiser, inference, servo, battery) is replaced by a small state
machine with delays: install (``install_delay_s``) and load (``load_delay_s``).

For the demo, ``drive(running, archive, throttle_pct)`` (optional) is called whenever
the car starts or stops or its max throttle changes: ``python -m
tests.standins.deepracer_console --sim-track reinvent_base`` drives the simulator with
the loaded model (:class:`SimDrive`), so a "DeepRacer" visibly drives in ``drem demo``.

Everything a test needs to look at is on the object: ``requests`` (method, path) in
order, ``uploads``, ``loaded``, ``led``, ``throttle``, ``running``, ``drive_mode``;
:meth:`expire_session` forgets the login (the cookie's hour is over),
:meth:`stop` / :meth:`start` take the car off the network and back (a reboot).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

from flask import Flask, jsonify, make_response, request
from flask_wtf.csrf import CSRFProtect, generate_csrf
from werkzeug.serving import make_server
from werkzeug.utils import secure_filename

from car_client.vehicle.base import ModelSpec

LOGIN_PAGE = """<!doctype html><html><head><meta name="csrf-token" content="{token}">
<title>AWS DeepRacer</title></head><body><form method="post" action="/login">
<input type="password" name="password"></form></body></html>"""


def make_self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate and key (PEM) for ``host`` in ``folder``, as on the car."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class DeepRacerConsole:
    """One stand-in car console on ``https://127.0.0.1:<port>``.

    ``password``: the console password; ``folder``: where certificate and artifacts
    live; ``battery_level``: 0..10 (-1: no battery), as ``get_battery_level`` answers.
    """

    def __init__(self, folder: Path, password: str = "racer-pass", install_delay_s: float = 0.3,
                 load_delay_s: float = 0.3, battery_level: int = 8, port: int = 0, drive=None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.artifacts = self.folder / "artifacts"  # /opt/aws/deepracer/artifacts
        self.artifacts.mkdir(exist_ok=True)
        self.cert, self.key = make_self_signed(self.folder)
        self.password_digest = hashlib.sha224(password.encode()).hexdigest()  # login.py
        self.install_delay_s, self.load_delay_s = install_delay_s, load_delay_s
        self.battery_level = battery_level
        self.requests: list[tuple[str, str]] = []
        self.uploads: list[str] = []
        self.token: str | None = None  # TOKEN_PATH's content
        self.loaded: str | None = None
        self.loading_status = "error"  # before any load the ROS service reports no model
        self.led = (0, 0, 0)
        self.throttle: int | None = None
        self.running = False
        self.drive_mode: str | None = None
        self.fail_load_reason: str | None = None
        self.drive = drive
        self._lock = threading.Lock()
        self._port = port
        self._server = None
        self._thread: threading.Thread | None = None
        self.app = self._make_app()

    # -- lifecycle ---------------------------------------------------------------
    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self._port}"

    def start(self) -> DeepRacerConsole:
        """Serve (again, on the same port after :meth:`stop`)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self._server = make_server("127.0.0.1", self._port, self.app, threaded=True, ssl_context=ctx)
        self._port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="deepracer-console")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the car off the network (switched off or rebooting)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reboot(self) -> None:
        """Off and on again: logins and the loaded model are lost, installed models kept."""
        self.stop()
        self.token, self.loaded, self.loading_status, self.running = None, None, "error", False
        self.start()

    def expire_session(self) -> None:
        """The ``deepracer_token`` cookie's hour is over (login.py sets ``max_age`` 1 h)."""
        self.token = None

    def api_paths(self) -> list[str]:
        """The ``METHOD /path`` of every request, in order."""
        return [f"{m} {p}" for m, p in self.requests]

    # -- the app -----------------------------------------------------------------
    def _make_app(self) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY=os.urandom(16).hex(), SESSION_COOKIE_SECURE=True)  # webserver.py
        CSRFProtect(app)
        console = self

        @app.before_request
        def record_and_auth():
            path = request.full_path.rstrip("?") if request.query_string else request.path
            console.requests.append((request.method, path))
            # nginx auth_request -> login.py auth(): 401 unless the cookie matches TOKEN_PATH
            if request.path.startswith("/api/"):
                cookie = str(request.cookies.get("deepracer_token"))
                if console.token is None or cookie != console.token:
                    return make_response("", 401)
            return None

        @app.route("/", methods=["GET"])
        @app.route("/home", methods=["GET"])
        def home_page():  # login.py home_page (the login template carries the CSRF meta)
            return LOGIN_PAGE.format(token=generate_csrf())

        @app.route("/login", methods=["GET", "POST"])
        def login():  # login.py login
            if request.method == "POST":
                response = make_response(jsonify({"redirect": "/home"}), 200)
                given = hashlib.sha224(request.form["password"].encode("utf-8")).hexdigest()
                if given == console.password_digest:
                    console.token = str(uuid.uuid4())
                    response.set_cookie("deepracer_token", console.token, max_age=3600, secure=True)
                    return response
                return "failure"
            return LOGIN_PAGE.format(token=generate_csrf())

        @app.route("/api/uploadModels", methods=["POST", "PUT"])
        def model_file_upload():  # models.py model_file_upload
            file_obj = request.files["file"]
            file_name = file_obj.filename
            if not file_name.endswith(".tar.gz"):
                return jsonify({"success": False,
                                "message": "Failed to upload the model. Not a .tar.gz file"})
            folder_name = file_name[:-7]
            dir_path = console.artifacts / folder_name
            if dir_path.exists():
                shutil.rmtree(dir_path)
            staging = console.folder / "staging" / folder_name
            staging.mkdir(parents=True, exist_ok=True)
            archive = staging / secure_filename(file_name)
            file_obj.save(archive)
            try:  # the optimiser (ConsoleModelActionSrv) answers something other than "done-upload"
                tarfile.open(archive).close()
            except (tarfile.TarError, OSError):
                return jsonify({"success": False, "message": "Failed to upload & optimize the model"})
            console.uploads.append(folder_name)
            # the model optimiser (ConsoleModelActionSrv action=1) extracts and installs
            threading.Thread(target=console._install, args=(archive, dir_path), daemon=True).start()
            return jsonify({"success": True, "message": "Model uploaded successfully to your vehicle"})

        @app.route("/api/is_model_installed", methods=["GET"])
        def is_model_installed():  # models.py is_model_installed
            modelname = request.args.get("filename")
            for cur_dir in os.listdir(console.artifacts):
                if cur_dir == modelname:
                    return jsonify({"success": True, "message": "Model is installed"})
            return jsonify({"success": False, "message": "Model is not installed"})

        @app.route("/api/models", methods=["GET"])
        def api_list_models():  # models.py api_list_models
            models = []
            for folder in sorted(os.listdir(console.artifacts)):
                for pb in sorted((console.artifacts / folder).glob("*.pb")):
                    models.append({"model_name": pb.name[:-3], "model_folder_name": folder,
                                   "model_training_algorithm": "Clipped PPO",
                                   "model_action_space_type": "Discrete", "model_sensors": ["Camera"],
                                   "is_select_disabled": False})
            return jsonify({"models": models, "sensor_status": {
                "camera_status": "connected", "stereo_status": "not_connected",
                "lidar_status": "not_connected"}})

        @app.route("/api/models/<model_folder_name>/<model_name>", methods=["PUT", "POST"])
        def api_load_model(model_folder_name, model_name):  # models.py api_load_model
            meta = console.artifacts / model_folder_name / "model_metadata.json"
            if not meta.is_file():
                return jsonify({"success": False, "reason": "No model_metadata_file for the model selected"})
            try:
                json.loads(meta.read_text())
            except ValueError:
                return jsonify({"success": False, "reason": "Error while reading model_metadata.json"})
            if console.fail_load_reason:
                return jsonify({"success": False, "reason": console.fail_load_reason})
            with console._lock:
                console.loading_status = "loading"
            threading.Thread(target=console._load, args=(f"{model_folder_name}/{model_name}",),
                             daemon=True).start()
            return jsonify({"success": True})

        @app.route("/api/isModelLoading", methods=["GET"])
        def is_model_loading():  # models.py is_model_loading
            return jsonify({"success": True, "isModelLoading": console.loading_status})

        @app.route("/api/deleteModels", methods=["POST", "PUT"])
        def delete_model_folder():  # models.py delete_model_folder
            for filename in request.json["filenames"]:
                shutil.rmtree(console.artifacts / secure_filename(filename), ignore_errors=True)
            return jsonify({"success": True, "message": "Models deleted successfully from your vehicle"})

        @app.route("/api/drive_mode", methods=["PUT", "POST"])
        def api_set_drive_mode():  # vehicle_control.py api_set_drive_mode
            drive_mode = request.json.get("drive_mode")
            if drive_mode is None:
                return jsonify({"success": False, "reason": "drive_mode must be set."})
            console.drive_mode = "manual" if drive_mode == "manual" else "auto"
            return jsonify(success=True)

        @app.route("/api/start_stop", methods=["PUT", "POST"])
        def api_set_start_stop():  # vehicle_control.py api_set_start_stop
            start_stop = request.json.get("start_stop")
            if start_stop is None:
                return jsonify({"success": False, "reason": "start_stop must be set."})
            console.running = start_stop != "stop"
            console._drive()
            return jsonify({"success": True})

        @app.route("/api/max_nav_throttle", methods=["PUT", "POST"])
        def max_nav_throttle():  # vehicle_control.py max_nav_throttle
            nav_throttle = request.json.get("throttle")
            if nav_throttle is None:
                return jsonify({"success": False, "reason": "value must be set."})
            console.throttle = nav_throttle
            console._drive()
            return jsonify({"success": True})

        @app.route("/api/set_led_color", methods=["POST"])
        def set_led_color():  # led_api.py set_led_color
            data = request.json
            try:
                rgb = tuple(int(data[k]) for k in ("red", "green", "blue"))
            except Exception:  # noqa: BLE001 - led_api.py answers "Error" for any failure
                return jsonify(success=False, reason="Error")
            if any(v < 0 or v > 255 for v in rgb):
                return jsonify(success=False, reason="Input is not valid")
            console.led = rgb
            return jsonify({"success": True})

        @app.route("/api/get_battery_level", methods=["GET"])
        def get_battery_level():  # device_info_api.py get_battery_level
            return jsonify({"battery_level": console.battery_level, "success": True})

        return app

    # -- behind the routes (the car's ROS services) ----------------------------------
    def _install(self, archive: Path, dir_path: Path) -> None:
        time.sleep(self.install_delay_s)
        tmp = dir_path.with_name(dir_path.name + ".installing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in ("model_metadata.json", "model.pb"):
                    (tmp / name).write_bytes(tar.extractfile(member).read())
        shutil.copy(archive, tmp / archive.name)
        os.replace(tmp, dir_path)

    def _drive(self) -> None:
        if self.drive is None:
            return
        archive = None
        if self.loaded:
            folder = self.artifacts / self.loaded.split("/", 1)[0]
            archive = next(iter(sorted(folder.glob("*.tar.gz"))), None)
        self.drive(self.running, archive, self.throttle if self.throttle is not None else 100)

    def _load(self, model_path: str) -> None:
        time.sleep(self.load_delay_s)
        with self._lock:
            self.loaded, self.loading_status = model_path, "loaded"


class SimDrive:
    """The demo's "car": drives the simulator on ``track`` with the loaded DeepRacer model
    while the console says start; the throttle percent caps the speed (100 % = 4 m/s).

    A real DeepRacer reports no laps; the simulator's laps are the demo's record of what
    the car drove: each lap is appended to ``lap_log`` (when given) as one JSON line
    ``{"lap", "lap_time_ms", "resets", "model"}`` the moment the simulated car crosses the
    start line, in the format of the car client's ``laps.jsonl`` that the demo's lap timer
    replays as pulses (``drem.demo.timer_process.DemoTrackTimer``)."""

    def __init__(self, track: str, speedup: float = 1.0, lap_log: Path | None = None) -> None:
        from car_client.sim.vehicle import SimulatedVehicle  # numpy/tflite: only with --sim-track

        self.vehicle = SimulatedVehicle(track=track, speedup=speedup)
        self.laps: list[int] = []
        self.lap_log = lap_log
        if lap_log is not None:
            lap_log.parent.mkdir(parents=True, exist_ok=True)
        self._driving: Path | None = None

    def _lap(self, lap) -> None:
        self.laps.append(lap.lap_time_ms)
        if self.lap_log is not None:
            line = {"lap": len(self.laps), "lap_time_ms": int(lap.lap_time_ms), "resets": int(lap.resets),
                    "model": self._driving.name if self._driving else None}
            with self.lap_log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")

    def __call__(self, running: bool, archive: Path | None, throttle_pct: float) -> None:
        self.vehicle.set_max_speed(max(0.1, 4.0 * float(throttle_pct) / 100.0))
        if running and archive is not None and self._driving != archive:
            self._driving = archive  # start_driving stops a drive already running, puts the car on the line
            self.vehicle.start_driving(ModelSpec("demo", str(archive), "deepracer"), self._lap)
        elif not running and self._driving is not None:
            self.vehicle.stop_driving()
            self._driving = None


def main(argv: list[str] | None = None) -> None:
    """Serve one stand-in console until SIGTERM (``--help`` for the options)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--sim-track", default=None, help="drive the simulator on this track")
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--lap-log", type=Path, default=None,
                        help="append each simulated lap to this JSON-lines file (with --sim-track)")
    args = parser.parse_args(argv)
    password = args.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
    drive = SimDrive(args.sim_track, args.speedup, args.lap_log) if args.sim_track else None
    console = DeepRacerConsole(args.folder, password=password, port=args.port, drive=drive,
                               install_delay_s=1.0, load_delay_s=1.0).start()
    print(f"DeepRacer console stand-in on {console.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(5.0):
        if drive is not None and drive.laps:
            print(f"simulated laps (ms): {drive.laps}", flush=True)
    console.stop()


if __name__ == "__main__":
    main()
