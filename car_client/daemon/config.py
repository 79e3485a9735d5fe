"""The car's config file: server URL, car token and settings from activation.

JSON, written atomically with mode 0600 (the token is a bearer secret), in
``~/.config/drem-car/config.json`` unless ``--config`` or ``DREM_CAR_CONFIG`` says
otherwise. Shape::

    {"server": "http://drem.local:5000", "car_id": 7, "token": "car_…",
     "hostname": "car-01", "heartbeat_interval_s": 2.0,
     "activated_at": 1795000000.0, "software_version": "0.1.0"}

The daemon's data (outbox, lap log, model store) lives beside the file unless
``--data-dir`` is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

ENV_VAR = "DREM_CAR_CONFIG"
DEFAULT_HEARTBEAT_S = 2.0


class ConfigError(Exception):
    """The config file is missing, unreadable or incomplete (message says what to do)."""


@dataclass
class CarConfig:
    """What activation gave the car (see the module docstring for the JSON shape)."""

    server: str
    car_id: int | str
    token: str
    hostname: str
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_S
    activated_at: float = 0.0
    software_version: str = ""

    def to_dict(self) -> dict:
        """The JSON object written to the file."""
        return asdict(self)


def device_config_path(env_var: str, folder: str) -> Path:
    """Where a device program keeps its config: ``$<env_var>`` if set, else
    ``$XDG_CONFIG_HOME/<folder>/config.json`` (default ``~/.config/<folder>/config.json``).
    Shared by the car daemon and the lap-timer program."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / folder / "config.json"


def default_config_path() -> Path:
    """``$DREM_CAR_CONFIG`` if set, else ``~/.config/drem-car/config.json``."""
    return device_config_path(ENV_VAR, "drem-car")


def resolve_config_path(path: str | os.PathLike | None) -> Path:
    """The explicit ``path`` if given, else :func:`default_config_path`."""
    return Path(path).expanduser() if path else default_config_path()


def normalize_server_url(url: str) -> str:
    """Return ``url`` without a trailing slash; raise ConfigError unless it is http(s)."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"server URL must look like http://host:port, got {url!r}")
    return url


def save_config(path: str | os.PathLike, config: CarConfig) -> Path:
    """Write ``config`` to ``path`` atomically with mode 0600 and return the path.

    The parent folder is created with mode 0700 if missing. Raises OSError when
    the folder is not writable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(config.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # in case the umask or an old file interfered
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_config(path: str | os.PathLike) -> CarConfig:
    """Read the config file at ``path``.

    Raises :class:`ConfigError` if it is missing ("activate first"), not JSON, or
    lacks ``server``/``token``/``car_id``.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no car config at {path}: activate this car first with "
            "'car-client activate --server URL --code CODE'"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read car config {path}: {exc}") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"car config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"car config {path} must be a JSON object")
    missing = [k for k in ("server", "token", "car_id") if not data.get(k)]
    if missing:
        raise ConfigError(
            f"car config {path} lacks {', '.join(missing)}: activate the car again"
        )
    known = {k: data[k] for k in CarConfig.__dataclass_fields__ if k in data}
    known.setdefault("hostname", "")
    config = CarConfig(**known)
    config.server = normalize_server_url(config.server)
    try:
        config.heartbeat_interval_s = float(config.heartbeat_interval_s) or DEFAULT_HEARTBEAT_S
    except (TypeError, ValueError):
        config.heartbeat_interval_s = DEFAULT_HEARTBEAT_S
    return config
