"""The lap-timer program: sensors -> durable outbox -> ``/timer`` socket, with heartbeats.

Each crossing becomes an outbox entry (``crossing``: ``{crossing_id, device_time_ms,
sensor}``) committed to ``outbox.sqlite`` before anything is sent, and a line in the
append-only ``crossings.jsonl``; the shared :class:`~car_client.daemon.connection.Connection`
sends entries oldest first and drops one only when the server acknowledges it, so a
network cut or a server restart loses no crossing and a resend is stored once (the
server keys crossings by ``crossing_id``).

Clock offset: every heartbeat carries ``device_time_ms``; its ack carries the server's
``server_time_ms``. With the send and answer times ``t0``, ``t1`` (device clock) the
offset is ``server_time_ms - (t0 + t1) / 2`` (error at most half the round trip); the
timer keeps the sample with the smallest round trip of the last :data:`OFFSET_SAMPLES`
and reports it in the next heartbeat (``clock_offset_ms``, ``round_trip_ms``).

Exit statuses of :meth:`TimerProgram.run`: 0 after SIGTERM/SIGINT (outbox flushed as
far as possible); 3 when the server refused the token ("invalid timer token": revoked,
activate again).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path

from car_client import __version__
from car_client.daemon.connection import Connection
from car_client.daemon.outbox import LapLog, Outbox, new_id
from car_client.timer.config import TimerConfig
from car_client.timer.sensors import Sensors, device_time_ms

log = logging.getLogger(__name__)

NAMESPACE = "/timer"
TOKEN_REFUSED = "invalid timer token"
EXIT_OK = 0
EXIT_TOKEN_REFUSED = 3
FLUSH_ON_EXIT_S = 3.0
OFFSET_SAMPLES = 8
#: Python's thread switch interval while the timer runs (s). The edge callback stamps the
#: crossing; with the default 5 ms a busy socket thread could hold it back that long.
SWITCH_INTERVAL_S = 0.0002


class ClockOffset:
    """The device clock's offset to the server clock from heartbeat round trips (module doc)."""

    def __init__(self, samples: int = OFFSET_SAMPLES) -> None:
        self._samples: deque[tuple[int, int]] = deque(maxlen=samples)  # (round trip ms, offset ms)
        self._lock = threading.Lock()

    def add(self, server_time_ms: int, sent_ms: float, received_ms: float) -> None:
        """One sample: the server's time in its answer, the device times of send and answer."""
        trip = max(0.0, received_ms - sent_ms)
        offset = server_time_ms - (sent_ms + received_ms) / 2
        with self._lock:
            self._samples.append((round(trip), round(offset)))

    def best(self) -> tuple[int | None, int | None]:
        """``(offset_ms, round_trip_ms)`` of the sample with the smallest round trip (the newest
        of equal ones), or Nones."""
        with self._lock:
            if not self._samples:
                return None, None
            trip, _newest, offset = min((trip, -i, offset) for i, (trip, offset) in enumerate(self._samples))
        return offset, trip


class TimerProgram:
    """One timer process. Build it, then call :meth:`run` from the main thread."""

    def __init__(self, config: TimerConfig, data_dir: str | os.PathLike, pin_factory=None,
                 ack_timeout_s: float = 10.0, backoff_cap_s: float = 30.0) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.outbox = Outbox(self.data_dir / "outbox.sqlite", kinds=("crossing",))
        self.log = LapLog(self.data_dir / "crossings.jsonl")
        self.hostname = config.hostname or socket.gethostname()
        self.offset = ClockOffset()
        self._stop = threading.Event()
        self.connection = Connection(
            config.server, config.token, self.outbox, None, self.heartbeat_payload,
            heartbeat_interval_s=config.heartbeat_interval_s, ack_timeout_s=ack_timeout_s,
            backoff_cap_s=backoff_cap_s, namespace=NAMESPACE, token_refusal=TOKEN_REFUSED,
            on_heartbeat_ack=self._heartbeat_ack, thread_prefix="timer")
        self.sensors = Sensors(config.sensors, self.on_crossing, pin_factory=pin_factory)

    def on_crossing(self, sensor: int, at_ms: int) -> str:
        """A sensor saw a crossing at device time ``at_ms``: log it and queue it durably.
        Returns the crossing id (made here, unique per crossing)."""
        crossing_id = new_id()
        payload = {"crossing_id": crossing_id, "device_time_ms": int(at_ms), "sensor": int(sensor)}
        self.log.append(payload | {"logged_at": time.time()})
        self.outbox.put("crossing", payload, entry_id=crossing_id)
        log.info("crossing on sensor %d at %d ms", sensor, at_ms)
        return crossing_id

    def heartbeat_payload(self) -> dict:
        """The heartbeat fields except ``ip`` (the connection adds it)."""
        offset, trip = self.offset.best()
        return {"device_time_ms": device_time_ms(), "clock_offset_ms": offset, "round_trip_ms": trip,
                "hostname": self.hostname, "software_version": __version__,
                "outbox": len(self.outbox), "bounced": self.sensors.bounced,
                "sensors": [{"sensor": s.sensor, "pin": s.pin, "pull_up": s.pull_up, "edge": s.edge,
                             "bounce_ms": s.bounce_ms} for s in self.sensors.configs]}

    def _heartbeat_ack(self, ack, sent_at: float, received_at: float) -> None:
        server_ms = ack.get("server_time_ms") if isinstance(ack, dict) else None
        if isinstance(server_ms, int):
            self.offset.add(server_ms, sent_at * 1000, received_at * 1000)

    def request_stop(self, *_args) -> None:
        """Ask :meth:`run` to shut down cleanly (the SIGTERM/SIGINT handler)."""
        self._stop.set()

    def start(self) -> None:
        """Start the connection threads (returns at once)."""
        self.connection.start()
        log.info("timer %s (id %s) started: %d sensors, %d crossings waiting", self.hostname,
                 self.config.timer_id, len(self.sensors.configs), len(self.outbox))

    def run(self, install_signals: bool = True) -> int:
        """Run until stopped; return the exit status (module docstring)."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            sys.setswitchinterval(SWITCH_INTERVAL_S)  # the whole process is the timer's
        self.start()
        refused = self.connection.wait_until_stopped(self._stop)
        self.shutdown()
        if refused:
            log.error("token refused: this timer was revoked; activate it again with 'car-client timer activate'")
            return EXIT_TOKEN_REFUSED
        return EXIT_OK

    def shutdown(self) -> None:
        """Release the pins, flush the outbox as far as possible, disconnect, close."""
        self.sensors.close()
        if self.connection.connected.is_set() and not self.connection.flush(FLUSH_ON_EXIT_S):
            log.warning("%d crossings left unsent; they go out on the next start", len(self.outbox))
        self.connection.stop()
        self.outbox.close()
