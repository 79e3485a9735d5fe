"""The lap timer's config file: server URL, timer token, sensors.

JSON, written atomically with mode 0600 (the token is a bearer secret), in
``~/.config/drem-timer/config.json`` unless ``--config`` or ``DREM_TIMER_CONFIG`` says
otherwise. Shape::

    {"server": "http://drem.local:5000", "timer_id": 3, "token": "timer_…",
     "name": "finish line", "track_id": 1, "hostname": "timer-01",
     "heartbeat_interval_s": 2.0, "activated_at": 1795000000.0,
     "sensors": [{"sensor": 1, "pin": 17, "pull_up": true, "edge": "falling", "bounce_ms": 50}]}

The outbox and the crossing log live beside the file unless ``--data-dir`` is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from car_client.daemon.config import (
    ConfigError,
    device_config_path,
    normalize_server_url,
    save_config,
)

ENV_VAR = "DREM_TIMER_CONFIG"
DEFAULT_HEARTBEAT_S = 2.0
EDGES = ("rising", "falling")
MAX_SENSORS = 2


@dataclass
class SensorConfig:
    """One input: ``pin`` (BCM GPIO number), ``pull_up`` (True: the sensor pulls the pin to
    ground when triggered), ``edge`` that marks a crossing, ``bounce_ms`` (edges of this
    sensor closer than this to its last crossing are contact chatter, dropped on the device)."""

    sensor: int
    pin: int
    pull_up: bool = True
    edge: str = "falling"
    bounce_ms: int = 50

    def check(self) -> SensorConfig:
        """Return self; ConfigError for a pin outside 0-27, an unknown edge or a bounce
        time outside 0-10000 ms."""
        if not isinstance(self.pin, int) or not 0 <= self.pin <= 27:
            raise ConfigError(f"sensor {self.sensor}: GPIO pin must be 0-27, got {self.pin!r}")
        if self.edge not in EDGES:
            raise ConfigError(f"sensor {self.sensor}: edge must be rising or falling, got {self.edge!r}")
        if not isinstance(self.bounce_ms, int) or not 0 <= self.bounce_ms <= 10_000:
            raise ConfigError(f"sensor {self.sensor}: bounce_ms must be 0-10000, got {self.bounce_ms!r}")
        return self


def default_sensors() -> list[SensorConfig]:
    """DREM's wiring: GPIO17 (sensor 1) and GPIO27 (sensor 2), pull-up, falling edge."""
    return [SensorConfig(1, 17), SensorConfig(2, 27)]


@dataclass
class TimerConfig:
    """What activation gave the timer, plus its sensors (see the module docstring)."""

    server: str
    timer_id: int | str
    token: str
    name: str = ""
    track_id: int | None = None
    hostname: str = ""
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_S
    activated_at: float = 0.0
    sensors: list[SensorConfig] = field(default_factory=default_sensors)

    def to_dict(self) -> dict:
        """The JSON object written to the file."""
        return asdict(self)


def default_config_path() -> Path:
    """``$DREM_TIMER_CONFIG`` if set, else ``~/.config/drem-timer/config.json``."""
    return device_config_path(ENV_VAR, "drem-timer")


def resolve_config_path(path: str | os.PathLike | None) -> Path:
    """The explicit ``path`` if given, else :func:`default_config_path`."""
    return Path(path).expanduser() if path else default_config_path()


def parse_sensors(raw) -> list[SensorConfig]:
    """Sensors from their JSON list (1-2 objects); ConfigError for anything else."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SENSORS:
        raise ConfigError(f"sensors must be a list of 1-{MAX_SENSORS} objects")
    out = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ConfigError("each sensor must be an object")
        known = {k: item[k] for k in ("pin", "pull_up", "edge", "bounce_ms") if k in item}
        if "pin" not in known:
            raise ConfigError(f"sensor {number} lacks its GPIO pin")
        out.append(SensorConfig(sensor=number, **known).check())
    if len({s.pin for s in out}) != len(out):
        raise ConfigError("two sensors on the same GPIO pin")
    return out


def save_timer_config(path: str | os.PathLike, config: TimerConfig) -> Path:
    """Write ``config`` atomically with mode 0600 (as the car's config); returns the path."""
    return save_config(path, config)


def load_timer_config(path: str | os.PathLike) -> TimerConfig:
    """Read the config file at ``path``.

    Raises ConfigError if it is missing ("activate first"), not JSON, lacks
    ``server``/``token``/``timer_id`` or has bad sensors.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no timer config at {path}: activate this timer first with "
            "'car-client timer activate --server URL --code CODE'"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read timer config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"timer config {path} must be a JSON object")
    missing = [k for k in ("server", "token", "timer_id") if not data.get(k)]
    if missing:
        raise ConfigError(f"timer config {path} lacks {', '.join(missing)}: activate the timer again")
    known = {k: data[k] for k in TimerConfig.__dataclass_fields__ if k in data and k != "sensors"}
    config = TimerConfig(**known)
    if "sensors" in data:
        config.sensors = parse_sensors([{k: v for k, v in s.items() if k != "sensor"} if isinstance(s, dict) else s
                                        for s in data["sensors"]] if isinstance(data["sensors"], list)
                                       else data["sensors"])
    config.server = normalize_server_url(config.server)
    try:
        config.heartbeat_interval_s = float(config.heartbeat_interval_s) or DEFAULT_HEARTBEAT_S
    except (TypeError, ValueError):
        config.heartbeat_interval_s = DEFAULT_HEARTBEAT_S
    return config
