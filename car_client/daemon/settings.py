"""Car settings the operator changes by command and that must survive a restart.

``settings.json`` in the data dir: ``{"max_speed_mps": 2.0, "tail_light": "white"}``.
A speed cap set before a ``restart`` command (or a crash) is applied again at start.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from car_client.protocol import TAIL_LIGHTS

DEFAULT_MAX_SPEED_MPS = 2.0
MIN_SPEED_MPS, MAX_SPEED_MPS = 0.1, 4.0
DEFAULT_TAIL_LIGHT = "white"


class Settings:
    """``max_speed_mps`` (m/s, 0.1–4.0) and ``tail_light`` (a palette colour), persisted."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.max_speed_mps = DEFAULT_MAX_SPEED_MPS
        self.tail_light = DEFAULT_TAIL_LIGHT
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        speed = data.get("max_speed_mps")
        if isinstance(speed, (int, float)) and MIN_SPEED_MPS <= speed <= MAX_SPEED_MPS:
            self.max_speed_mps = float(speed)
        if data.get("tail_light") in TAIL_LIGHTS:
            self.tail_light = data["tail_light"]

    def update(self, **changes) -> None:
        """Set ``max_speed_mps`` and/or ``tail_light`` and write the file atomically."""
        with self._lock:
            for key, value in changes.items():
                if key not in ("max_speed_mps", "tail_light"):
                    raise KeyError(key)
                setattr(self, key, value)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"max_speed_mps": self.max_speed_mps,
                                       "tail_light": self.tail_light}), encoding="utf-8")
            os.replace(tmp, self.path)
