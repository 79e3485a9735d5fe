"""A live drem server for end-to-end tests and benchmarks.

:class:`LiveServer` starts the real server as a subprocess, the way production does
(the Dockerfile): ``drem init`` first, then ``python -m gunicorn -k gevent -w 1
--no-control-socket --bind 127.0.0.1:PORT wsgi:app`` from the repository root (or
``drem run``). It has its own instance folder, ``DREM_ENV=production`` and a
``SECRET_KEY``; the drem settings of the calling shell are *not* inherited (a
developer's ``DATABASE_URL`` or ``CLAMD_URL`` must not leak into a test), only what
is passed in. Without ``clamd_url`` the server points at a clamd socket that does
not exist, so models wait in ``scanning``.

Typical use::

    with LiveServer(clamd_url=url) as server:
        racer = server.create_user("racer")
        server.api("POST", "/api/models", token=racer["token"], ...)
        server.restart()          # same instance folder and database
        server.kill9()            # a crash; start() brings it back

Everything the server prints (gunicorn, drem's log) goes to ``server.log`` in the
instance folder: :meth:`LiveServer.log_text` and :meth:`LiveServer.wait_for_log`
read it. :class:`RssSampler` follows the resident memory of the gunicorn worker.
The process itself is a :class:`drem.demo.processes.ManagedProcess`.

No pytest imports here: ``tests/e2e`` and ``bench/`` use this module.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import requests

from drem.demo.processes import (
    ManagedProcess,
    WaitTimeout,
    child_pids,
    free_port,
    rss_bytes,
    wait_until,
)
from drem.platform.config import REPO_ROOT, demo_models_dir, setting_names

#: drem's settings (drem.platform.config.SETTINGS), never inherited from the caller, except
#: where this machine's files are (tracks, the demo model cache).
DREM_SETTINGS = tuple(n for n in setting_names() if n not in ("DREM_TRACKS_DIR", "DREM_DEMO_MODELS"))
_seq = itertools.count(1)


def environment_without_drem_settings(**settings: str) -> dict[str, str]:
    """This process's environment without drem's settings (:data:`DREM_SETTINGS`), plus
    ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in DREM_SETTINGS}
    env.update(settings)
    return env


class RssSampler:
    """Samples a process's resident memory every ``interval_s`` in a thread.

    ``baseline`` is the first sample, ``peak`` the largest; ``growth`` = peak - baseline
    (bytes). Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, pid: int, interval_s: float = 0.02):
        self.pid, self.interval_s = pid, interval_s
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self.samples = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = rss_bytes(self.pid)
            except psutil.Error:
                return  # the process is gone
            self.peak = max(self.peak, value)
            self.samples += 1
            self._stop.wait(self.interval_s)

    @property
    def growth(self) -> int:
        """Peak minus baseline resident memory, in bytes."""
        return self.peak - self.baseline

    def start(self) -> RssSampler:
        """Start sampling in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop sampling (one last sample is taken) and return :attr:`growth`."""
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, rss_bytes(self.pid))
        return self.growth

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create an empty PostgreSQL database next to ``base_url``'s and drop it afterwards.

    ``base_url`` is e.g. ``postgresql://127.0.0.1:5432/test``; yields the same URL with
    a new database name, so a live server never shares tables with the in-process test
    app (which empties its own database after every test).
    """
    parts = urlsplit(base_url)
    name = f"drem_e2e_{os.getpid()}_{secrets.token_hex(4)}"
    admin_url = base_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServerError(RuntimeError):
    """The live server failed to initialise or start; the message ends with its log."""


class LiveServer:
    """The real drem server as a subprocess, with its own instance folder.

    Args:
        instance_path: instance folder (SQLite file, models, server.log); a new temporary
            folder when None (removed by :meth:`cleanup` unless ``keep_instance``).
        port: TCP port on 127.0.0.1; a free one when None. Kept across restarts.
        launcher: ``"gunicorn"`` (the Dockerfile's command) or ``"drem-run"`` (``drem run``).
        workers: gunicorn workers (more than one needs ``redis_url``).
        admin_username, admin_password: the first admin, created by ``drem init``.
        database_url, redis_url, storage_url, clamd_url: drem's settings of the same
            names (``None`` = drem's embedded default; for ``clamd_url`` a socket in the
            instance folder where no clamd runs).
        upload_limit_mb: ``UPLOAD_LIMIT_MB``.
        env: further environment variables for the server (win over everything else).
        startup_timeout: seconds to wait for ``/healthz``.
    """

    def __init__(self, instance_path: str | os.PathLike[str] | None = None, *, port: int | None = None,
                 launcher: str = "gunicorn", workers: int = 1, admin_username: str = "admin",
                 admin_password: str | None = None, database_url: str | None = None,
                 redis_url: str | None = None, storage_url: str | None = None,
                 clamd_url: str | None = None, upload_limit_mb: int | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 30.0,
                 keep_instance: bool = False):
        if launcher not in ("gunicorn", "drem-run"):
            raise ValueError(f"launcher must be 'gunicorn' or 'drem-run', got {launcher!r}")
        self._own_instance = instance_path is None and not keep_instance
        self.instance_path = Path(instance_path or tempfile.mkdtemp(prefix="drem-e2e-")).resolve()
        self.instance_path.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.launcher, self.workers = launcher, workers
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(12)
        self.secret_key = secrets.token_hex(32)
        self.database_url = database_url or ""
        self.clamd_url = clamd_url or f"unix://{self.instance_path / 'clamd' / 'clamd.sock'}"
        self.log_path = self.instance_path / "server.log"
        self.env = self._environment(redis_url, storage_url, upload_limit_mb, env or {})
        self.startup_timeout = startup_timeout
        self.process = ManagedProcess("server", self.command(), self.log_path, self.env)
        self.admin_token: str | None = None
        self._initialised = False

    # ------------------------------------------------------------------ set-up

    def _environment(self, redis_url: str | None, storage_url: str | None,
                     upload_limit_mb: int | None, extra: dict[str, str]) -> dict[str, str]:
        env = environment_without_drem_settings(
            DREM_ENV="production", SECRET_KEY=self.secret_key, DREM_INSTANCE_PATH=str(self.instance_path),
            CLAMD_URL=self.clamd_url, DATABASE_URL=self.database_url, REDIS_URL=redis_url or "",
            STORAGE_URL=storage_url or "",
            # Tests sign many users in from one address; the limit itself is tested elsewhere.
            LOGIN_RATE_LIMIT="1000 per minute", PYTHONUNBUFFERED="1")
        if upload_limit_mb is not None:
            env["UPLOAD_LIMIT_MB"] = str(upload_limit_mb)
        env.update(extra)
        return env

    @property
    def storage_root(self) -> Path:
        """The model folder of the default (local) storage: ``<instance>/models``."""
        return self.instance_path / "models"

    def command(self) -> list[str]:
        """The command line that serves drem (run from the repository root)."""
        if self.launcher == "drem-run":
            return [self._drem(), "run", "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(self.workers)]
        return [sys.executable, "-m", "gunicorn", "-c", "python:drem.platform.serving", "-w", str(self.workers),
                "--bind", f"127.0.0.1:{self.port}", "wsgi:app"]

    @staticmethod
    def _drem() -> str:
        exe = Path(sys.executable).with_name("drem")
        if exe.exists():
            return str(exe)
        found = shutil.which("drem")
        if not found:
            raise ServerError("the drem command is not installed (pip install -e .)")
        return found

    def init(self) -> str:
        """Run ``drem init --admin-password …`` (migrations, first admin); returns its output."""
        cmd = [self._drem(), "init", "--admin-username", self.admin_username,
               "--admin-password", self.admin_password]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=180,
                              check=False)
        if proc.returncode != 0:
            raise ServerError(f"drem init failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self._initialised = True
        return proc.stdout

    # ------------------------------------------------------------- life cycle

    def start(self) -> LiveServer:
        """Initialise (first time only), start the server and wait until ``/healthz``
        answers; fetches :attr:`admin_token` the first time. Raises ServerError with the
        log's tail when the server exits or does not answer in time."""
        if self.process.alive:
            return self
        if not self._initialised:
            self.init()
        self.process.start()
        try:
            wait_until(self._healthy, self.startup_timeout, f"{self.url}/healthz")
        except WaitTimeout:
            self.kill9()
            raise ServerError(f"/healthz did not answer within {self.startup_timeout} s:\n"
                              + self.log_tail()) from None
        if self.admin_token is None:
            self.admin_token = self.token_for(self.admin_username, self.admin_password)
        return self

    def _healthy(self) -> bool:
        if not self.process.alive:
            raise ServerError(f"the server exited with {self.process.returncode} during start:\n"
                              + self.log_tail())
        try:
            resp = requests.get(self.url + "/healthz", timeout=2)
            return resp.status_code == 200 and resp.json().get("status") == "ok"
        except requests.RequestException:
            return False

    @property
    def running(self) -> bool:
        """True while the server's main process runs."""
        return self.process.alive

    @property
    def pid(self) -> int:
        """Process id of the server's main process (the gunicorn master)."""
        if not self.process.alive:
            raise ServerError("the server is not running")
        return self.process.pid

    def worker_pid(self, timeout: float = 5.0) -> int:
        """Process id of the (first) gunicorn worker: the process that serves requests."""
        try:
            return min(wait_until(lambda: child_pids(self.pid), timeout, "a gunicorn worker process"))
        except WaitTimeout:
            raise ServerError("the gunicorn master has no worker process") from None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (gunicorn's graceful shutdown), then SIGKILL of every process of the
        server after ``timeout`` seconds. Returns the exit code (None when never started)."""
        return self.process.stop(timeout)

    def kill9(self) -> None:
        """Kill the server and its workers at once (SIGKILL to its process tree): a crash."""
        self.process.kill9()

    def restart(self) -> LiveServer:
        """Stop gracefully and start again on the same port, instance folder and database."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the server and remove the instance folder if this object created it."""
        self.stop()
        if self._own_instance:
            shutil.rmtree(self.instance_path, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -------------------------------------------------------------------- logs

    def log_text(self) -> str:
        """Everything the server printed so far (all starts)."""
        return self.process.log_text()

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server log."""
        return self.process.log_tail(lines)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears in the server log; returns the log. AssertionError
        (a :class:`WaitTimeout`, with the log's tail) on timeout."""
        def found() -> str | None:
            log = self.log_text()
            return log if text in log else None

        return wait_until(found, timeout, f"{text!r} in the server log", on_timeout=self.log_tail)

    # ------------------------------------------------------------------- HTTP

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """An HTTP request to the server (``path`` starts with ``/``), with a Bearer token
        when given. ``kwargs`` go to :func:`requests.request` (default timeout 30 s)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def token_for(self, username: str, password: str) -> str:
        """A new API token for the user (``POST /api/auth/tokens``)."""
        resp = self.api("POST", "/api/auth/tokens", json={"username": username, "password": password,
                                                          "name": "e2e"})
        if resp.status_code != 201:
            raise ServerError(f"no token for {username!r}: {resp.status_code} {resp.text[:300]}")
        return resp.json()["token"]

    def create_user(self, role: str = "racer", username: str | None = None,
                    password: str | None = None) -> dict[str, Any]:
        """Create a user with ``role`` through the admin API and sign them in.

        Returns ``{"id", "username", "password", "role", "token"}``.
        """
        if self.admin_token is None:
            raise ServerError("start the server first")
        username = username or f"{role[:6]}{os.getpid() % 1000}x{next(_seq)}"
        password = password or f"pw-{secrets.token_urlsafe(9)}"
        resp = self.api("POST", "/api/users", token=self.admin_token,
                        json={"username": username, "password": password, "role": role})
        if resp.status_code != 201:
            raise ServerError(f"could not create {role} {username!r}: {resp.status_code} {resp.text[:300]}")
        return {"id": resp.json()["id"], "username": username, "password": password, "role": role,
                "token": self.token_for(username, password)}

    def model(self, model_id: int, token: str | None = None) -> dict[str, Any]:
        """``GET /api/models/ID`` as JSON (admin token by default)."""
        resp = self.api("GET", f"/api/models/{model_id}", token=token or self.admin_token)
        resp.raise_for_status()
        return resp.json()

    def wait_for_model(self, model_id: int, statuses: tuple[str, ...] = ("available", "quarantined", "invalid"),
                       timeout: float = 60.0, token: str | None = None, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll a model until its status is one of ``statuses``; returns it. AssertionError
        on timeout."""
        last: dict[str, Any] = {}

        def done() -> dict[str, Any] | None:
            last.update(self.model(model_id, token))
            return dict(last) if last["status"] in statuses else None

        return wait_until(done, timeout, f"model {model_id} to reach {statuses}", poll_s,
                          on_timeout=lambda: f"still {last.get('status')!r} ({last.get('status_reason')}):\n"
                                             + self.log_tail())


def ensure_demo_models() -> Path:
    """The trained demo models folder (:func:`drem.platform.config.demo_models_dir`); builds
    the default model there once when nothing is cached (a few minutes on 2 cores)."""
    folder = demo_models_dir()
    if not (folder / "demo_models.json").exists() or not (folder / "steady.tflite").exists():
        subprocess.run([sys.executable, "-m", "car_client.training.demo_models", "--out", str(folder),
                        "--only", "steady"], cwd=REPO_ROOT, check=True, timeout=1800)
    return folder
