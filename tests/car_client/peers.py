"""Real local peers for car client tests: a minimal drem car server and a model file server.

``CarServerPeer`` speaks the server side of docs/car-protocol.md for one or more
cars: ``POST /api/car/activate``, the ``/car`` Socket.IO namespace (token check,
heartbeats, laps acknowledged with duplicate detection, command results) and a
small control API for tests (``/_peer/...``). It runs in-process (``start()`` /
``stop()``) or as its own process so a test can kill it hard and start it again::

    python -m tests.car_client.peers car-server --port 5123 --data-dir DIR \
        --token car_abc=7 [--code ABCD=valid|expired|used]

With a data dir, stored laps and results survive a restart (JSON lines files), so
a lap sent again after the restart is recognised as a duplicate.

``ModelFileServer`` serves model files over HTTP with ``Range`` support and can
cut a response off, ignore ``Range`` or refuse with a status.

``PeerClient`` drives either peer's control API over HTTP.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import socketio
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from drem.demo.processes import free_port  # the tests may; car_client itself never imports drem

NS = "/car"
REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout_s: float = 10.0, interval_s: float = 0.05, what: str = ""):
    """Poll ``predicate()`` until it returns something truthy; return it or raise AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
        time.sleep(interval_s)


class CarServerPeer:
    """A minimal drem car server (see the module docstring).

    ``tokens``: token -> car id; ``codes``: activation code -> ``valid`` | ``expired``
    | ``used`` (anything else is answered as unknown); ``data_dir``: where stored laps
    and results persist (None: memory only).
    """

    def __init__(self, port: int | None = None, tokens: dict | None = None,
                 codes: dict | None = None, data_dir: str | os.PathLike | None = None,
                 heartbeat_interval_s: float = 2.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens = dict(tokens or {})
        self.codes = dict(codes or {})
        self.heartbeat_interval_s = heartbeat_interval_s
        self.data_dir = Path(data_dir) if data_dir else None
        self.lock = threading.RLock()
        self.laps: list[dict] = []            # stored laps (each once), with "car_id"
        self.lap_receipts = 0                 # every lap message, duplicates included
        self.duplicates = 0
        self.results: list[dict] = []         # stored command results (each result_id once)
        self.heartbeats: list[dict] = []
        self.connects = 0
        self.refused_connects = 0
        self.sids: dict = {}                  # car id -> sid
        self.lose_next_acks = 0               # store the lap, then cut the car off instead of acking
        self.refuse_laps: dict | None = None  # e.g. {"error": "busy", "retry": True}
        self._next_car_id = 100
        self._load()
        self.sio = socketio.Server(async_mode="threading")
        self._register()
        self.app = socketio.WSGIApp(self.sio, self._control_app)
        self._server = None
        self._thread: threading.Thread | None = None

    # -- persistence ---------------------------------------------------------
    def _file(self, name: str) -> Path | None:
        return self.data_dir / name if self.data_dir else None

    def _load(self) -> None:
        for name, target in (("peer_laps.jsonl", self.laps), ("peer_results.jsonl", self.results)):
            path = self._file(name)
            if path and path.exists():
                target.extend(json.loads(line) for line in path.read_text().splitlines() if line)

    def _append(self, name: str, record: dict) -> None:
        path = self._file(name)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    # -- socket.io -----------------------------------------------------------
    def _register(self) -> None:
        sio = self.sio

        @sio.on("connect", namespace=NS)
        def connect(sid, environ, auth=None):
            token = (auth or {}).get("token") if isinstance(auth, dict) else None
            with self.lock:
                car_id = self.tokens.get(token)
                if car_id is None:
                    self.refused_connects += 1
                    raise socketio.exceptions.ConnectionRefusedError("invalid car token")
                self.connects += 1
                self.sids[car_id] = sid
            sio.save_session(sid, {"car_id": car_id}, namespace=NS)

        @sio.on("disconnect", namespace=NS)
        def disconnect(sid, reason=None):
            with self.lock:
                for car_id, known in list(self.sids.items()):
                    if known == sid:
                        del self.sids[car_id]

        @sio.on("heartbeat", namespace=NS)
        def heartbeat(sid, data):
            car_id = sio.get_session(sid, namespace=NS)["car_id"]
            with self.lock:
                self.heartbeats.append({"car_id": car_id, "received_at": time.time(), **data})
                del self.heartbeats[:-50]
            return {"ok": True}

        @sio.on("lap", namespace=NS)
        def lap(sid, data):
            car_id = sio.get_session(sid, namespace=NS)["car_id"]
            with self.lock:
                self.lap_receipts += 1
                if self.refuse_laps:
                    return {"ok": False, **self.refuse_laps}
                duplicate = any(x["lap_id"] == data.get("lap_id") for x in self.laps)
                if duplicate:
                    self.duplicates += 1
                else:
                    record = {"car_id": car_id, **data}
                    self.laps.append(record)
                    self._append("peer_laps.jsonl", record)
                lose = self.lose_next_acks > 0
                if lose:
                    self.lose_next_acks -= 1
            if lose:  # stored, but the car never hears so: as if the network cut just now
                sio.disconnect(sid, namespace=NS)
                return None
            return {"ok": True, "duplicate": duplicate}

        @sio.on("command_result", namespace=NS)
        def command_result(sid, data):
            car_id = sio.get_session(sid, namespace=NS)["car_id"]
            with self.lock:
                if not any(r["result_id"] == data.get("result_id") for r in self.results):
                    record = {"car_id": car_id, **data}
                    self.results.append(record)
                    self._append("peer_results.jsonl", record)
            return {"ok": True}

    def send_command(self, car_id, command_type: str, params: dict | None = None,
                     command_id: str | None = None) -> str:
        """Emit a ``command`` to a connected car; return its id (KeyError if offline)."""
        command_id = command_id or f"c-{uuid.uuid4().hex[:8]}"
        with self.lock:
            sid = self.sids[car_id]
        self.sio.emit("command", {"command_id": command_id, "type": command_type,
                                  "params": params or {}}, to=sid, namespace=NS)
        return command_id

    def revoke(self, token: str) -> None:
        """Forget ``token`` and disconnect its car (as an admin revoking it)."""
        with self.lock:
            car_id = self.tokens.pop(token, None)
            sid = self.sids.get(car_id)
        if sid:
            self.sio.disconnect(sid, namespace=NS)

    def state(self) -> dict:
        """Everything the peer saw, as plain JSON data."""
        with self.lock:
            return {"laps": list(self.laps), "lap_receipts": self.lap_receipts,
                    "duplicates": self.duplicates, "results": list(self.results),
                    "heartbeats": list(self.heartbeats), "connects": self.connects,
                    "refused_connects": self.refused_connects,
                    "connected": [str(c) for c in self.sids]}

    # -- HTTP: activation and control ----------------------------------------
    def _activate(self, body: dict) -> tuple[int, dict]:
        code = body.get("code")
        if not isinstance(code, str) or not body.get("hostname"):
            return 400, {"error": "code and hostname are required"}
        with self.lock:
            status = self.codes.get(code)
            if status == "expired":
                return 403, {"error": "activation code expired"}
            if status == "used":
                return 403, {"error": "activation code already used"}
            if status != "valid":
                return 403, {"error": "unknown activation code"}
            self.codes[code] = "used"
            self._next_car_id += 1
            token = "car_" + uuid.uuid4().hex
            self.tokens[token] = self._next_car_id
        return 201, {"car_id": self._next_car_id, "token": token, "hostname": body["hostname"],
                     "heartbeat_interval_s": self.heartbeat_interval_s}

    def _control_app(self, environ, start_response):
        request = Request(environ)
        body = request.get_json(silent=True) or {}
        status, answer = 404, {"error": "not found"}
        if request.method == "POST" and request.path == "/api/car/activate":
            status, answer = self._activate(body)
        elif request.path == "/_peer/state":
            status, answer = 200, self.state()
        elif request.method == "POST" and request.path == "/_peer/command":
            try:
                command_id = self.send_command(body["car_id"], body["type"], body.get("params"),
                                               body.get("command_id"))
                status, answer = 200, {"command_id": command_id}
            except KeyError:
                status, answer = 409, {"error": "car not connected"}
        elif request.method == "POST" and request.path == "/_peer/behaviour":
            with self.lock:
                if "lose_next_acks" in body:
                    self.lose_next_acks = int(body["lose_next_acks"])
                if "refuse_laps" in body:
                    self.refuse_laps = body["refuse_laps"]
            status, answer = 200, {"ok": True}
        elif request.method == "POST" and request.path == "/_peer/revoke":
            self.revoke(body.get("token"))
            status, answer = 200, {"ok": True}
        return Response(json.dumps(answer), status=status,
                         mimetype="application/json")(environ, start_response)

    # -- in-process lifecycle ------------------------------------------------
    def start(self) -> CarServerPeer:
        """Serve on 127.0.0.1:port in a background thread; return self."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Disconnect every car and stop serving."""
        with self.lock:
            sids = list(self.sids.values())
        for sid in sids:
            self.sio.disconnect(sid, namespace=NS)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class PeerClient:
    """The control API of a :class:`CarServerPeer` reached over HTTP (any process)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def state(self) -> dict:
        """The peer's :meth:`CarServerPeer.state`."""
        return requests.get(self.url + "/_peer/state", timeout=5).json()

    def alive(self) -> bool:
        """True when the peer answers."""
        try:
            return requests.get(self.url + "/_peer/state", timeout=1).ok
        except requests.RequestException:
            return False

    def send_command(self, car_id, command_type: str, params: dict | None = None,
                     command_id: str | None = None) -> str:
        """Send a command to a connected car; AssertionError if it is not connected."""
        r = requests.post(self.url + "/_peer/command", timeout=5, json={
            "car_id": car_id, "type": command_type, "params": params or {},
            "command_id": command_id})
        assert r.status_code == 200, r.text
        return r.json()["command_id"]

    def behaviour(self, **changes) -> None:
        """Change ``lose_next_acks`` / ``refuse_laps`` on the peer."""
        requests.post(self.url + "/_peer/behaviour", json=changes, timeout=5).raise_for_status()

    def revoke(self, token: str) -> None:
        """Revoke a car token and disconnect its car."""
        requests.post(self.url + "/_peer/revoke", json={"token": token},
                      timeout=5).raise_for_status()

    def results_for(self, command_id: str) -> list[dict]:
        """Stored results of one command, in arrival order."""
        return [r for r in self.state()["results"] if r["command_id"] == command_id]


def start_car_server_process(port: int, data_dir, tokens: dict,
                             codes: dict | None = None) -> subprocess.Popen:
    """Run a :class:`CarServerPeer` in its own process and wait until it answers."""
    args = [sys.executable, "-m", "tests.car_client.peers", "car-server", "--port", str(port),
            "--data-dir", str(data_dir)]
    for token, car_id in tokens.items():
        args += ["--token", f"{token}={car_id}"]
    for code, status in (codes or {}).items():
        args += ["--code", f"{code}={status}"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = PeerClient(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: client.alive() or proc.poll() is not None, 15, what="car server")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"car server exited: {proc.stderr.read().decode()[-2000:]}")
    return proc


# -- the car daemon under test -------------------------------------------------
def write_car_config(path, server_url: str, token: str, car_id=7, heartbeat_interval_s=0.5):
    """Write a car config file as ``car-client activate`` would (mode 0600)."""
    from car_client.daemon.config import CarConfig, save_config

    return save_config(path, CarConfig(server=server_url, car_id=car_id, token=token,
                                       hostname=f"car-{car_id}",
                                       heartbeat_interval_s=heartbeat_interval_s))


def start_daemon_process(config_path, data_dir, *extra: str) -> subprocess.Popen:
    """Run ``python -m car_client run`` as a real process (stderr to ``data_dir/daemon.log``)."""
    log = open(Path(data_dir).parent / f"{Path(data_dir).name}-daemon.log", "ab")
    args = [sys.executable, "-m", "car_client", "run", "--config", str(config_path),
            "--data-dir", str(data_dir), *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log)


class DaemonThread:
    """A :class:`car_client.daemon.daemon.Daemon` running in a thread of the test process."""

    def __init__(self, config_path, data_dir, vehicle, ack_timeout_s: float = 5.0) -> None:
        from car_client.daemon.config import load_config
        from car_client.daemon.daemon import Daemon

        self.daemon = Daemon(load_config(config_path), vehicle, data_dir,
                             ack_timeout_s=ack_timeout_s)
        self.exit_status: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_status = self.daemon.run(install_signals=False)

    def start(self) -> DaemonThread:
        """Start the daemon; return self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Ask the daemon to stop, wait for it and return its exit status."""
        self.daemon.request_stop()
        self._thread.join(timeout_s)
        return self.exit_status


# -- model file server --------------------------------------------------------
class ModelFileServer:
    """Serves ``files`` (URL path -> bytes) with ``Range: bytes=N-`` support.

    Knobs: ``cut_after`` bytes of body for the next ``cuts`` responses (then the
    connection is closed mid-body); ``ignore_range``; ``status`` (answer every
    request with it). ``requests`` records ``(path, range header, status)``.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.cut_after: int | None = None
        self.cuts = 0
        self.ignore_range = False
        self.status: int | None = None
        self.requests: list[tuple[str, str | None, int]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                peer._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> ModelFileServer:
        """Serve in a background thread; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        range_header = handler.headers.get("Range")
        data = self.files.get(path)
        if self.status or data is None:
            status = self.status or 404
            self.requests.append((path, range_header, status))
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        start = 0
        if range_header and not self.ignore_range and range_header.startswith("bytes="):
            start = int(range_header[6:].split("-")[0])
        if start >= len(data) and start:
            self.requests.append((path, range_header, 416))
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        status = 206 if start else 200
        self.requests.append((path, range_header, status))
        body = data[start:]
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if self.cuts > 0 and self.cut_after is not None:
            self.cuts -= 1
            handler.wfile.write(body[: self.cut_after])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(body)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.car_client.peers")
    sub = parser.add_subparsers(dest="peer", required=True)
    car = sub.add_parser("car-server", help="run a CarServerPeer until killed")
    car.add_argument("--port", type=int, required=True)
    car.add_argument("--data-dir", default=None)
    car.add_argument("--token", action="append", default=[], help="TOKEN=CAR_ID")
    car.add_argument("--code", action="append", default=[], help="CODE=valid|expired|used")
    args = parser.parse_args(argv)
    tokens = {}
    for item in args.token:
        token, _, car_id = item.partition("=")
        tokens[token] = int(car_id) if car_id.isdigit() else car_id
    codes = dict(item.partition("=")[::2] for item in args.code)
    peer = CarServerPeer(args.port, tokens, codes, args.data_dir).start()
    try:
        peer._thread.join()
    except KeyboardInterrupt:
        peer.stop()


if __name__ == "__main__":
    _main()
