"""The command dispatcher: server ``command`` messages → vehicle, model store, results.

Every command gets an ``acknowledged`` result at once, then ``done`` or ``failed``
with a reason; all results go through the outbox. Commands run in order on one
executor thread, except:

- ``emergency_stop`` runs at once in the receiving thread; it also cancels a
  running download and any ``start_driving`` still queued or starting;
- ``load_model`` downloads on its own thread (state ``loading_model``), so the
  settings commands keep working meanwhile; progress is reported by repeating
  ``acknowledged`` with ``progress`` 0..1. A real car that must take the model onto
  its own hardware (``Vehicle.prepare_model``, e.g. a DeepRacer's upload, install
  and load) does so on the same thread: the download is then the first
  :data:`DOWNLOAD_SHARE` of the progress. A model in a format the vehicle cannot
  run (``Vehicle.model_formats``) is refused before any download.

A command id seen before (redelivery) is ignored: its results are already in the
outbox. ``restart`` is handed to the daemon, which reports ``done`` from the new
process.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from car_client.daemon.model_store import DownloadError, ModelStore
from car_client.daemon.outbox import Outbox, new_id
from car_client.daemon.settings import MAX_SPEED_MPS, MIN_SPEED_MPS, Settings
from car_client.daemon.state import COMMAND_TYPES, CommandRefused, StateMachine
from car_client.pilots.donkey import ModelSettings
from car_client.protocol import TAIL_LIGHTS
from car_client.vehicle.base import LapCallback, Vehicle, VehicleError

log = logging.getLogger(__name__)

SEEN_MAX = 2000
#: share of a load's progress taken by the download when the vehicle prepares the model after it
DOWNLOAD_SHARE = 0.4
INTERRUPTED = ("the car client restarted before this command finished (it was stopped hard or lost "
               "power); send it again")


def validate_command(command_type: str, params) -> str | None:
    """Check a command's params; return a refusal reason, or None when they are valid."""
    if command_type not in COMMAND_TYPES:
        return f"unknown command type {command_type!r}"
    if not isinstance(params, dict):
        return "params must be a JSON object"
    if command_type == "load_model":
        for key in ("model_id", "url", "sha256"):
            if not params.get(key):
                return f"load_model needs {key}"
        if not str(params["url"]).startswith(("http://", "https://")):
            return "load_model url must be http(s)"
        if not re.fullmatch(r"[0-9a-fA-F]{64}", str(params["sha256"])):
            return "load_model sha256 must be 64 hex digits"
        size = params.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            return "load_model size must be a non-negative integer"
        if params.get("model_settings") is not None:
            if not isinstance(params["model_settings"], dict):
                return "load_model model_settings must be a JSON object"
            try:
                ModelSettings.from_dict(params["model_settings"])
            except ValueError as exc:
                return f"load_model model_settings: {exc}"
    elif command_type == "delete_models":
        ids = params.get("model_ids")
        if not isinstance(ids, list):
            return "delete_models needs model_ids (a list; empty deletes all)"
    elif command_type == "start_driving":
        if not params.get("model_id"):
            return "start_driving needs model_id"
    elif command_type == "set_max_speed":
        speed = params.get("max_speed_mps")
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not (
            MIN_SPEED_MPS <= speed <= MAX_SPEED_MPS
        ):
            return f"max_speed_mps must be a number from {MIN_SPEED_MPS} to {MAX_SPEED_MPS}"
    elif command_type == "set_tail_light":
        if params.get("colour") not in TAIL_LIGHTS:
            return f"colour must be one of {', '.join(TAIL_LIGHTS)}"
    return None


class CommandDispatcher:
    """Runs server commands against the car (see the module docstring).

    ``on_lap``: where the vehicle's laps go (the daemon's lap sink);
    ``request_restart(command_id)``: asks the daemon to restart the process;
    ``on_change()``: called after settings change (to send a heartbeat).
    """

    def __init__(
        self,
        vehicle: Vehicle,
        store: ModelStore,
        machine: StateMachine,
        outbox: Outbox,
        settings: Settings,
        on_lap: LapCallback,
        request_restart: Callable[[str], None],
        on_change: Callable[[], None] = lambda: None,
        inflight_path: str | os.PathLike | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.store = store
        self.machine = machine
        self.outbox = outbox
        self.settings = settings
        self._on_lap = on_lap
        self._request_restart = request_restart
        self._on_change = on_change
        self._queue: queue.Queue = queue.Queue()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._estop_generation = 0
        self._cancel_download = threading.Event()
        self._cancel_reason = "cancelled by emergency stop"
        self._download: threading.Thread | None = None
        self._executor = threading.Thread(target=self._run_queue, name="car-commands",
                                          daemon=True)
        self._inflight_path = Path(inflight_path) if inflight_path else None
        self._inflight: dict[str, None] = dict.fromkeys(self._read_inflight())

    def start(self) -> None:
        """Start the executor thread."""
        self._executor.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel a running download, finish the queue's current command and stop."""
        self._cancel_reason = "the car client stopped; send load_model again"
        self._cancel_download.set()
        self._queue.put(None)
        if self._executor.is_alive():
            self._executor.join(timeout_s)
        if self._download is not None:
            self._download.join(timeout_s)

    def mark_seen(self, command_id: str) -> None:
        """Remember a command id handled before (e.g. the ``restart`` that made this process)."""
        with self._lock:
            self._seen[command_id] = None

    # -- commands in flight (survive a hard stop) ----------------------------
    def _read_inflight(self) -> list[str]:
        if self._inflight_path is None:
            return []
        try:
            ids = json.loads(self._inflight_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def _track(self, command_id: str, status: str) -> None:
        """Keep ``inflight.json`` up to date: ids acknowledged but not yet done or failed."""
        if self._inflight_path is None:
            return
        with self._lock:
            if status == "acknowledged":
                if command_id in self._inflight:
                    return
                self._inflight[command_id] = None
            elif command_id in self._inflight:
                del self._inflight[command_id]
            else:
                return
            tmp = self._inflight_path.with_name(self._inflight_path.name + ".tmp")
            tmp.write_text(json.dumps(list(self._inflight)), encoding="utf-8")
            os.replace(tmp, self._inflight_path)

    def recover_interrupted(self) -> list[str]:
        """Fail the commands a previous process acknowledged but never finished (it was
        killed or lost power), so the server does not wait for them for ever; returns
        their ids. Ids already handled in this process (e.g. the ``restart`` that
        started it) are left alone. Call once at start, before :meth:`start`."""
        with self._lock:
            leftover = [c for c in self._inflight if c not in self._seen]
        for command_id in leftover:
            self.mark_seen(command_id)
            self.result(command_id, "failed", INTERRUPTED)
        with self._lock:
            stale = [c for c in self._inflight if c in self._seen]
        for command_id in stale:  # finished by now (restart) or just failed above
            self._track(command_id, "done")
        return leftover

    # -- results -----------------------------------------------------------
    def result(self, command_id: str, status: str, reason: str | None = None,
               progress: float | None = None) -> None:
        """Queue a ``command_result`` in the outbox (status acknowledged|done|failed)."""
        self._track(command_id, status)
        result_id = new_id()
        payload = {"result_id": result_id, "command_id": command_id, "status": status,
                   "reason": reason, "progress": progress}
        self.outbox.put("command_result", payload, entry_id=result_id)
        if status == "failed":
            log.warning("command %s failed: %s", command_id, reason)
        else:
            log.info("command %s %s", command_id, status)

    # -- entry point -------------------------------------------------------
    def handle(self, message: dict) -> None:
        """Take one server ``command`` message; never raises, never blocks for long."""
        command_id = message.get("command_id") if isinstance(message, dict) else None
        if not command_id or not isinstance(command_id, str):
            log.warning("ignoring a command without command_id: %r", message)
            return
        with self._lock:
            if command_id in self._seen:
                log.info("command %s delivered again; already handled", command_id)
                return
            self._seen[command_id] = None
            while len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
        command_type = message.get("type")
        params = message.get("params") or {}
        self.result(command_id, "acknowledged")
        problem = validate_command(command_type, params)
        if problem:
            self.result(command_id, "failed", problem)
            return
        if command_type == "emergency_stop":
            self._execute(command_id, command_type, params)
        else:
            self._queue.put((command_id, command_type, params, self._estop_generation))

    def _run_queue(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            command_id, command_type, params, generation = item
            if command_type == "start_driving" and generation != self._estop_generation:
                self.result(command_id, "failed", "cancelled by emergency stop")
                continue
            self._execute(command_id, command_type, params)

    def _execute(self, command_id: str, command_type: str, params: dict) -> None:
        try:
            self.machine.check(command_type, params, self.store.ids())
            getattr(self, "_do_" + command_type)(command_id, params)
        except CommandRefused as exc:
            self.result(command_id, "failed", exc.reason)
        except Exception as exc:  # noqa: BLE001 - report, never crash the daemon
            log.exception("command %s (%s) crashed", command_id, command_type)
            self.result(command_id, "failed", f"{command_type} failed: {exc}")

    def _has_models(self) -> bool:
        return bool(self.store.ids())

    # -- handlers (each ends in a done/failed result, or hands that on) -----
    def _needs_preparing(self) -> bool:
        return type(self.vehicle).prepare_model is not Vehicle.prepare_model

    def _do_load_model(self, command_id: str, params: dict) -> None:
        model_id = str(params["model_id"])
        fmt = str(params.get("format") or "")
        if fmt and fmt not in self.vehicle.model_formats:
            raise CommandRefused(f"this car runs {', '.join(self.vehicle.model_formats)} models, "
                                 f"not {fmt}")
        if self._download is not None and self._download.is_alive():
            self._download.join(5.0)  # a download cancelled by emergency_stop winding down
            if self._download.is_alive():
                raise CommandRefused("the previous download is still stopping; try again")
        self._cancel_download.clear()
        self.machine.apply("load_started", has_models=self._has_models(), model_id=model_id)
        self._download = threading.Thread(target=self._download_model, args=(command_id, params),
                                          name=f"car-download-{model_id}", daemon=True)
        self._download.start()

    def _download_model(self, command_id: str, params: dict) -> None:
        reported = [0.0]
        prepare = self._needs_preparing()
        share = DOWNLOAD_SHARE if prepare else 1.0

        def progress(fraction: float) -> None:
            if fraction - reported[0] >= 0.25 and fraction < 1.0:
                reported[0] = fraction
                self.result(command_id, "acknowledged", progress=round(fraction, 2))

        try:
            spec = self.store.load(str(params["model_id"]), str(params["url"]), str(params["sha256"]),
                                   name=str(params.get("name") or ""),
                                   model_format=str(params.get("format") or ""),
                                   size=params.get("size"), progress=lambda f: progress(f * share),
                                   settings=params.get("model_settings"),
                                   cancel=self._cancel_download)
            if prepare:
                progress(share)
                self._prepare(spec, lambda f: progress(share + (1.0 - share) * f))
        except (VehicleError, ValueError) as exc:
            self.machine.apply("load_failed", has_models=self._has_models())
            self.result(command_id, "failed", str(exc))
        except DownloadError as exc:
            self.machine.apply("load_failed", has_models=self._has_models())
            cancelled = self._cancel_download.is_set() and exc.reason == "download cancelled"
            self.result(command_id, "failed", self._cancel_reason if cancelled else exc.reason)
        except Exception as exc:  # noqa: BLE001
            log.exception("model download crashed")
            self.machine.apply("load_failed", has_models=self._has_models())
            self.result(command_id, "failed", f"load_model failed: {exc}")
        else:
            self.machine.apply("load_done", has_models=True)
            self.result(command_id, "done", progress=1.0)
        self._on_change()

    def _prepare(self, spec, progress) -> None:
        """Put ``spec`` onto the vehicle; on failure drop it from the store, so the
        heartbeat never lists a model the car itself does not have."""
        try:
            self.vehicle.prepare_model(spec, progress, self._cancel_download)
            if self._cancel_download.is_set():
                raise VehicleError(self._cancel_reason)
        except Exception:
            self.store.delete([spec.model_id])
            raise

    def _do_delete_models(self, command_id: str, params: dict) -> None:
        wanted = [str(i) for i in params.get("model_ids") or []] or self.store.ids()
        specs = [spec for spec in (self.store.get(i) for i in wanted) if spec is not None]
        try:
            self.vehicle.delete_models(specs)
        except VehicleError as exc:
            raise CommandRefused(str(exc)) from None
        removed = self.store.delete([str(i) for i in params.get("model_ids") or []])
        for model_id in removed:
            self.machine.forget_model(model_id)
        self.machine.apply("models_deleted", has_models=self._has_models())
        self.result(command_id, "done")
        self._on_change()

    def _do_start_driving(self, command_id: str, params: dict) -> None:
        spec = self.store.get(str(params["model_id"]))
        if spec is None:  # deleted between the check and now
            raise CommandRefused(f"model {params['model_id']} is not on the car")
        generation = self._estop_generation
        race_id = params.get("race_id")

        def on_lap(report) -> None:
            # laps carry the race they were driven in, so a lap delivered late (after a
            # network cut) is never credited to the next race on this car
            if race_id is not None:
                report.extra["race_id"] = race_id
            self._on_lap(report)

        try:
            self.vehicle.start_driving(spec, on_lap)
        except ValueError as exc:
            raise CommandRefused(f"cannot drive model {spec.model_id}: {exc}") from exc
        except Exception as exc:
            self.machine.apply("fault", has_models=self._has_models(),
                               error=f"vehicle failed to start: {exc}")
            raise
        if generation != self._estop_generation:  # an emergency stop came in meanwhile
            self.vehicle.emergency_stop()
            raise CommandRefused("cancelled by emergency stop")
        self.machine.apply("drive_started", has_models=True, model_id=spec.model_id)
        self.result(command_id, "done")

    def _do_stop_driving(self, command_id: str, params: dict) -> None:
        self.vehicle.stop_driving()
        self.machine.apply("stop", has_models=self._has_models())
        self.result(command_id, "done")

    def _do_emergency_stop(self, command_id: str, params: dict) -> None:
        self._estop_generation += 1
        self._cancel_reason = "cancelled by emergency stop"
        self._cancel_download.set()
        try:
            self.vehicle.emergency_stop()
        finally:  # the car is stopped as far as the daemon can tell; failures say why
            self.machine.apply("emergency_stop", has_models=self._has_models())
        self.result(command_id, "done")

    def _do_set_max_speed(self, command_id: str, params: dict) -> None:
        speed = float(params["max_speed_mps"])
        self.vehicle.set_max_speed(speed)
        self.settings.update(max_speed_mps=speed)
        self.result(command_id, "done")
        self._on_change()

    def _do_set_tail_light(self, command_id: str, params: dict) -> None:
        self.vehicle.set_tail_light(params["colour"])
        self.settings.update(tail_light=params["colour"])
        self.result(command_id, "done")
        self._on_change()

    def _do_restart(self, command_id: str, params: dict) -> None:
        self._request_restart(command_id)
