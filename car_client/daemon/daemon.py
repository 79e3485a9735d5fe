"""The daemon: wires vehicle, state machine, model store, outbox, commands, connection.

Data dir contents: ``outbox.sqlite``, ``laps.jsonl``, ``settings.json``,
``models/`` (the model store), ``inflight.json`` (ids of commands acknowledged but
not finished: a process killed hard reports them ``failed`` at its next start) and,
briefly, ``restart.json`` (the id of a ``restart`` command, so the new process can
report it ``done``).

Exit statuses of :meth:`Daemon.run`: 0 after SIGTERM/SIGINT (driving stopped,
outbox flushed as far as possible, disconnected); 3 when the server refused the
token ("invalid car token": re-activate). A ``restart`` command re-executes the
process in place (same pid) instead of returning.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from car_client import __version__
from car_client.daemon.commands import CommandDispatcher
from car_client.daemon.config import CarConfig
from car_client.daemon.connection import Connection
from car_client.daemon.model_store import ModelStore
from car_client.daemon.outbox import LapLog, Outbox
from car_client.daemon.settings import Settings
from car_client.daemon.state import CarState, StateMachine
from car_client.vehicle.base import LapReport, Vehicle, VehicleError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_TOKEN_REFUSED = 3
FLUSH_ON_EXIT_S = 3.0


def lap_payload(report: LapReport) -> dict:
    """The protocol's ``lap`` message for a :class:`LapReport`."""
    return {
        "lap_id": report.lap_id,
        "model_id": str(report.model_id),
        "lap_time_ms": int(report.lap_time_ms),
        "resets": int(report.resets),
        "lap_number": int(report.lap_number),
        "finished_at": float(report.finished_at),
    } | ({"race_id": report.extra["race_id"]} if report.extra.get("race_id") is not None else {})


class Daemon:
    """One car client process. Build it, then call :meth:`run` from the main thread."""

    def __init__(
        self,
        config: CarConfig,
        vehicle: Vehicle,
        data_dir: str | os.PathLike,
        ack_timeout_s: float = 10.0,
        restart_argv: list[str] | None = None,
    ) -> None:
        self.config = config
        self.vehicle = vehicle
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.restart_argv = restart_argv
        self.outbox = Outbox(self.data_dir / "outbox.sqlite")
        self.lap_log = LapLog(self.data_dir / "laps.jsonl")
        self.store = ModelStore(self.data_dir / "models")
        self.settings = Settings(self.data_dir / "settings.json")
        self.hostname = config.hostname or socket.gethostname()
        self._stop = threading.Event()
        self._restart_command: str | None = None
        self._not_driving_seen = 0
        self.machine = StateMachine(has_models=bool(self.store.ids()),
                                    on_change=lambda snap: self._state_changed(snap))
        self.dispatcher = CommandDispatcher(
            vehicle, self.store, self.machine, self.outbox, self.settings,
            on_lap=self.on_lap, request_restart=self.request_restart,
            on_change=lambda: self.connection.heartbeat_now(),
            inflight_path=self.data_dir / "inflight.json")
        self.connection = Connection(
            config.server, config.token, self.outbox, self.dispatcher.handle,
            self.heartbeat_payload, heartbeat_interval_s=config.heartbeat_interval_s,
            ack_timeout_s=ack_timeout_s)

    # -- callbacks ---------------------------------------------------------
    def _state_changed(self, snap) -> None:
        log.info("state: %s", snap.state)
        self.connection.heartbeat_now()

    def on_lap(self, report: LapReport) -> None:
        """Vehicle lap callback: log the lap locally and queue it in the outbox."""
        payload = lap_payload(report)
        self.lap_log.append({**payload, "extra": report.extra, "logged_at": time.time()})
        self.outbox.put("lap", payload, entry_id=report.lap_id)
        log.info("lap %d: %d ms, %d resets (model %s)", report.lap_number, report.lap_time_ms,
                 report.resets, report.model_id)

    def _check_vehicle(self, status: dict) -> None:
        """Move to ``error`` when the vehicle stopped driving on its own.

        Seen on two heartbeats in a row, so a stop_driving in progress (the vehicle
        stops a moment before the state machine hears of it) never counts.
        """
        if self.machine.state is CarState.DRIVING and not status.get("driving", True):
            self._not_driving_seen += 1
            if self._not_driving_seen >= 2:
                self.machine.apply("fault", has_models=bool(self.store.ids()),
                                   error="vehicle stopped driving unexpectedly")
        else:
            self._not_driving_seen = 0

    def heartbeat_payload(self) -> dict:
        """The heartbeat fields except ``ip`` (the connection adds it)."""
        status = self.vehicle.status()
        self._check_vehicle(status)
        snap = self.machine.snapshot()
        return {
            "state": snap.state.value,
            "battery_pct": status.get("battery_pct"),
            "hostname": self.hostname,
            "software_version": __version__,
            "max_speed_mps": self.settings.max_speed_mps,
            "tail_light": self.settings.tail_light,
            # a model still being taken onto the car (e.g. a DeepRacer's upload) is not on it yet
            "models": [m for m in self.store.list() if not (snap.state is CarState.LOADING_MODEL
                                                            and m.get("model_id") == snap.loading_model_id)],
            "model_in_use": snap.model_in_use,
            "error": snap.error,
            "model_formats": list(self.vehicle.model_formats),
        } | ({"fps": status["fps"]} if status.get("fps") is not None else {})

    def _apply_settings(self) -> None:
        """Give the vehicle the saved max speed and tail light (logged when it cannot take them)."""
        try:
            self.vehicle.set_max_speed(self.settings.max_speed_mps)
            self.vehicle.set_tail_light(self.settings.tail_light)
        except (VehicleError, ValueError) as exc:
            log.warning("could not apply the saved settings to the vehicle: %s", exc)

    def request_restart(self, command_id: str) -> None:
        """Stop the daemon and re-execute the process; the new one reports ``done``."""
        self._restart_command = command_id
        self._stop.set()

    def request_stop(self, *_args) -> None:
        """Ask :meth:`run` to shut down cleanly (the SIGTERM/SIGINT handler)."""
        self._stop.set()

    # -- run ---------------------------------------------------------------
    def _pick_up_restart(self) -> None:
        marker = self.data_dir / "restart.json"
        try:
            command_id = json.loads(marker.read_text(encoding="utf-8"))["command_id"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return
        self.dispatcher.mark_seen(command_id)
        self.dispatcher.result(command_id, "done")
        marker.unlink(missing_ok=True)

    def run(self, install_signals: bool = True) -> int:
        """Run until stopped; return the exit status (or re-exec on ``restart``)."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        # a real car may be unreachable now (booting) and wait for it: never hold up the start
        threading.Thread(target=self._apply_settings, name="car-settings", daemon=True).start()
        self._pick_up_restart()
        interrupted = self.dispatcher.recover_interrupted()
        if interrupted:
            log.warning("commands interrupted by the last stop, reported failed: %s",
                        ", ".join(interrupted))
        self.dispatcher.start()
        self.connection.start()
        log.info("car %s (id %s) started: %d models, %d outbox entries waiting, state %s",
                 self.hostname, self.config.car_id, len(self.store.ids()), len(self.outbox),
                 self.machine.state)
        refused = self.connection.wait_until_stopped(self._stop)
        self.shutdown()
        if refused:
            log.error("token refused: re-activate this car with 'car-client activate'")
            return EXIT_TOKEN_REFUSED
        if self._restart_command is not None:
            self._reexec()
        return EXIT_OK

    def shutdown(self) -> None:
        """Stop driving, finish queued commands, flush the outbox, disconnect, close."""
        try:
            self.vehicle.stop_driving()
        except Exception:  # noqa: BLE001 - keep shutting down
            log.exception("vehicle did not stop cleanly")
        if self.machine.state is CarState.DRIVING:
            self.machine.apply("stop", has_models=bool(self.store.ids()))
        self.dispatcher.stop()
        if self.connection.connected.is_set() and not self.connection.flush(FLUSH_ON_EXIT_S):
            log.warning("%d outbox entries left unsent; they go out on the next start",
                        len(self.outbox))
        self.connection.stop()
        self.outbox.close()
        try:
            self.vehicle.close()
        except Exception:  # noqa: BLE001
            log.exception("vehicle close failed")

    def _reexec(self) -> None:
        marker = self.data_dir / "restart.json"
        marker.write_text(json.dumps({"command_id": self._restart_command}), encoding="utf-8")
        argv = self.restart_argv or [sys.executable, "-m", "car_client", *sys.argv[1:]]
        log.info("restarting: %s", " ".join(argv))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)
