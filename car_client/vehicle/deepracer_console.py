"""A client of the AWS DeepRacer device console (``aws-deepracer-webserver-pkg``).

Every DeepRacer (firmware 20.04+) serves its console over HTTPS from the car itself:
Flask behind nginx, a self-signed certificate, a password login and Flask-WTF CSRF.
This client speaks exactly the console's routes (source files in
``aws-deepracer/aws-deepracer-webserver-pkg``, ``webserver_pkg/webserver_pkg/``):

=========================================  ===============  ========================
route                                      file             use
=========================================  ===============  ========================
``GET /`` (``<meta name="csrf-token">``)   login.py         the CSRF token
``POST /login`` form ``password``          login.py         cookie ``deepracer_token``
``PUT /api/uploadModels`` multipart        models.py        upload ``<folder>.tar.gz``
``GET /api/is_model_installed?filename=``  models.py        install finished?
``GET /api/models``                        models.py        models on the car
``PUT /api/models/<folder>/<name>``        models.py        load for inference
``GET /api/isModelLoading``                models.py        ``loading|loaded|error``
``POST /api/deleteModels``                 models.py        ``{"filenames": [...]}``
``PUT /api/drive_mode``                    vehicle_control  ``{"drive_mode": "auto"}``
``PUT /api/max_nav_throttle``              vehicle_control  ``{"throttle": 0..100}``
``PUT /api/start_stop``                    vehicle_control  ``{"start_stop": ...}``
``POST /api/set_led_color``                led_api.py       ``{"red","green","blue"}``
``GET /api/get_battery_level``             device_info_api  ``{"battery_level": 0..10}``
=========================================  ===============  ========================

Every ``/api/`` request passes nginx's ``auth_request`` to ``/auth`` (login.py), which
answers 401 without a valid ``deepracer_token`` cookie (it lasts one hour): the client
then logs in again and repeats the request once. Writes carry ``X-CSRFToken``; a 400
about the CSRF token (Flask-WTF tokens also expire after an hour) fetches a new one.

Certificate: pinned on first use. The first connection records the SHA-256 of the
car's certificate in ``pin_file``; every later connection must present the same
certificate (urllib3 ``assert_fingerprint``), so a different machine answering at the
car's address is refused (:class:`PinMismatch`) instead of silently trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

#: seconds for one HTTP request to the car (an upload gets ``UPLOAD_TIMEOUT_S``)
REQUEST_TIMEOUT_S = 10.0
UPLOAD_TIMEOUT_S = 300.0
_CSRF_META = re.compile(r'<meta\s+name="csrf-token"\s+content="([^"]+)"', re.I)


class ConsoleError(Exception):
    """The console answered with a failure; ``str(exc)`` is its own ``reason``/``message``."""


class LoginRefused(ConsoleError):
    """The console refused the password (its ``/login`` answered ``failure``)."""


class ConsoleUnreachable(ConsoleError):
    """No answer from the car (switched off, rebooting, wrong address)."""


class PinMismatch(ConsoleError):
    """The car presented a different certificate from the one pinned on first use."""


class _PinnedAdapter(HTTPAdapter):
    """An adapter that accepts exactly one certificate, by its SHA-256 fingerprint."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):  # noqa: D102 - urllib3 hook
        kwargs["assert_fingerprint"] = self.fingerprint
        return super().init_poolmanager(*args, **kwargs)


def fetch_fingerprint(host: str, port: int, timeout_s: float = REQUEST_TIMEOUT_S) -> str:
    """SHA-256 (hex, lower case) of the certificate ``host:port`` presents.

    Raises :class:`ConsoleUnreachable` when nothing answers there."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise ConsoleUnreachable(f"cannot reach the car's console at {host}:{port}: {exc}") from exc
    return hashlib.sha256(der).hexdigest()


class ConsoleClient:
    """One logged-in session with one car's device console (thread-safe).

    ``url``: ``https://<car address>`` (port optional); ``password``: the console
    password (printed under the car, or the one set on its first start);
    ``pin_file``: JSON ``{"host:port": "sha256 hex"}`` where certificates are pinned.
    """

    def __init__(self, url: str, password: str, pin_file: str | os.PathLike,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the DeepRacer console URL must be https://<car address>, got {url!r}")
        self.base = f"https://{parts.netloc}"
        self.host, self.port = parts.hostname, parts.port or 443
        self.password = password
        self.pin_file = Path(pin_file)
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._session: requests.Session | None = None
        self._csrf: str | None = None
        self.logins = 0

    # -- certificate pinning ---------------------------------------------------
    def _pins(self) -> dict:
        try:
            data = json.loads(self.pin_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def pinned_fingerprint(self) -> str:
        """The pinned fingerprint of this car, pinning it now on first use."""
        key = f"{self.host}:{self.port}"
        pins = self._pins()
        if key in pins:
            return pins[key]
        fingerprint = fetch_fingerprint(self.host, self.port, self.timeout_s)
        pins[key] = fingerprint
        self.pin_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pin_file.with_name(self.pin_file.name + ".tmp")
        tmp.write_text(json.dumps(pins, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.pin_file)
        log.warning("pinned the certificate of %s (sha256 %s) on first use", key, fingerprint)
        return fingerprint

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # no CA can vouch for a car's self-signed certificate: the pinned fingerprint
        # (checked by urllib3 on every connection) replaces the CA check
        session.verify = False
        # Flask-WTF checks the Referer of every HTTPS write (WTF_CSRF_SSL_STRICT), as a browser sends it
        session.headers["Referer"] = self.base + "/"
        session.mount(self.base + "/", _PinnedAdapter(self.pinned_fingerprint()))
        return session

    # -- login -------------------------------------------------------------------
    def login(self) -> None:
        """Log in: ``GET /`` for the CSRF token, ``POST /login`` with the password.

        Raises :class:`LoginRefused` for a wrong password, :class:`ConsoleUnreachable`,
        :class:`PinMismatch`."""
        with self._lock:
            session = self._new_session()
            page = self._send(session, "GET", "/", auth=False)
            match = _CSRF_META.search(page.text)
            if not match:
                raise ConsoleError("the car's console page has no CSRF token; is this a DeepRacer?")
            csrf = match.group(1)
            resp = self._send(session, "POST", "/login", auth=False, data={"password": self.password},
                              headers={"X-CSRFToken": csrf})
            if resp.status_code != 200:
                raise ConsoleError(f"the console refused the login request: HTTP {resp.status_code} "
                                   f"{resp.text[:200]}")
            if "deepracer_token" not in session.cookies:
                raise LoginRefused("the DeepRacer console refused the password "
                                   "(check the password file; the default is printed under the car)")
            self._session, self._csrf = session, csrf
            self.logins += 1

    def _send(self, session: requests.Session, method: str, path: str, auth: bool = True,
              timeout_s: float | None = None, **kwargs) -> requests.Response:
        try:
            # verify=False per request: a CA bundle from the environment would win over
            # the session's setting; the pinned fingerprint is checked all the same
            return session.request(method, self.base + path, timeout=timeout_s or self.timeout_s,
                                   allow_redirects=False, verify=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            if "fingerprint" in str(exc).lower():
                raise PinMismatch(
                    f"the car at {self.host}:{self.port} presented a different certificate from the "
                    f"one pinned in {self.pin_file}; if the car was re-imaged, remove its line there"
                ) from None
            raise ConsoleUnreachable(f"TLS error talking to {self.host}: {exc}") from exc
        except requests.RequestException as exc:
            raise ConsoleUnreachable(f"cannot reach the car's console at {self.host}: {exc}") from exc

    # -- calls -------------------------------------------------------------------
    def call(self, method: str, path: str, json_body: dict | None = None,
             timeout_s: float | None = None, **kwargs) -> dict:
        """One console API call; logs in (again) when needed and repeats once.

        Returns the JSON answer. Raises :class:`ConsoleError` with the console's own
        text when it answers ``success: false``, and the errors of :meth:`login`."""
        files = kwargs.pop("files", None)
        for attempt in (1, 2):
            if callable(files):  # a fresh file object per attempt: a refused one was read already
                kwargs["files"] = files()
            with self._lock:
                if self._session is None:
                    self.login()
                session, csrf = self._session, self._csrf
            headers = {"X-CSRFToken": csrf} if method != "GET" else {}
            resp = self._send(session, method, path, json=json_body, headers=headers,
                              timeout_s=timeout_s, **kwargs)
            if resp.status_code == 401 or (resp.status_code == 400 and "csrf" in resp.text.lower()):
                log.info("console session expired (%s on %s): logging in again", resp.status_code, path)
                with self._lock:
                    if self._session is session:
                        self._session = None
                if attempt == 1:
                    continue
            if resp.status_code != 200:
                raise ConsoleError(f"{method} {path} answered HTTP {resp.status_code}")
            try:
                data = resp.json()
            except ValueError:
                raise ConsoleError(f"{method} {path} did not answer JSON") from None
            if isinstance(data, dict) and data.get("success") is False:
                raise ConsoleError(str(data.get("reason") or data.get("message") or "failed"))
            return data if isinstance(data, dict) else {"data": data}
        raise ConsoleError(f"{method} {path}: the console keeps refusing the session")  # pragma: no cover

    # the console's operations, one method per route ---------------------------
    def upload_model(self, archive: str | os.PathLike, folder: str) -> None:
        """``PUT /api/uploadModels``: upload ``archive`` as ``<folder>.tar.gz``."""
        opened = []

        def files() -> dict:
            opened.append(open(archive, "rb"))  # noqa: SIM115 - closed below
            return {"file": (f"{folder}.tar.gz", opened[-1], "application/gzip")}

        try:
            self.call("PUT", "/api/uploadModels", timeout_s=UPLOAD_TIMEOUT_S, files=files)
        finally:
            for fh in opened:
                fh.close()

    def is_model_installed(self, folder: str) -> bool:
        """``GET /api/is_model_installed?filename=<folder>``."""
        try:
            self.call("GET", f"/api/is_model_installed?filename={quote(folder)}")
        except ConsoleError as exc:
            if type(exc) is ConsoleError and "not installed" in str(exc):
                return False
            raise
        return True

    def list_models(self) -> list[dict]:
        """``GET /api/models``: ``[{"model_name", "model_folder_name", ...}]``."""
        return list(self.call("GET", "/api/models").get("models") or [])

    def load_model(self, folder: str, model_name: str = "model") -> None:
        """``PUT /api/models/<folder>/<model_name>``: start loading for inference."""
        self.call("PUT", f"/api/models/{quote(folder)}/{quote(model_name)}")

    def model_loading_status(self) -> str:
        """``GET /api/isModelLoading``: ``loading``, ``loaded`` or ``error``."""
        return str(self.call("GET", "/api/isModelLoading").get("isModelLoading"))

    def delete_models(self, folders: list[str]) -> None:
        """``POST /api/deleteModels {"filenames": folders}``."""
        self.call("POST", "/api/deleteModels", {"filenames": list(folders)})

    def set_drive_mode(self, mode: str) -> None:
        """``PUT /api/drive_mode``: ``auto`` or ``manual``."""
        self.call("PUT", "/api/drive_mode", {"drive_mode": mode})

    def set_max_throttle(self, percent: int) -> None:
        """``PUT /api/max_nav_throttle {"throttle": 0..100}``."""
        self.call("PUT", "/api/max_nav_throttle", {"throttle": int(percent)})

    def start_stop(self, start: bool) -> None:
        """``PUT /api/start_stop {"start_stop": "start"|"stop"}``."""
        self.call("PUT", "/api/start_stop", {"start_stop": "start" if start else "stop"})

    def set_led(self, red: int, green: int, blue: int) -> None:
        """``POST /api/set_led_color`` with 0..255 per channel."""
        self.call("POST", "/api/set_led_color", {"red": red, "green": green, "blue": blue})

    def battery_level(self) -> int:
        """``GET /api/get_battery_level``: 0..10, or -1 when no battery is connected."""
        return int(self.call("GET", "/api/get_battery_level").get("battery_level", -1))
