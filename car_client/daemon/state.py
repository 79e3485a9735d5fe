"""The car's state machine: which commands are possible in which state.

Pure and thread-safe. States (as reported in the heartbeat's ``state`` field):

========== ==========================================================
idle       no driving model on the car
loading_model  a ``load_model`` download is running
ready      at least one model is on the car, not driving
driving    driving autonomously with ``model_in_use``
stopped    stopped by ``stop_driving`` or ``emergency_stop``
error      the vehicle failed (``error`` says why); any recovery command leaves it
========== ==========================================================

Rules (see :data:`ALLOWED_FROM`): ``load_model`` and ``delete_models`` are refused
while driving or loading; ``start_driving`` needs a model on the car and is refused
while loading or already driving; the safety and settings commands
(``stop_driving``, ``emergency_stop``, ``set_max_speed``, ``set_tail_light``,
``restart``) are never refused for the state. ``stop_driving`` when not driving is
an idempotent no-op; ``emergency_stop`` always ends in ``stopped``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from car_client.protocol import CAR_STATES, COMMAND_TYPES


class CarState(StrEnum):
    """The six states a car reports (the words are :data:`car_client.protocol.CAR_STATES`)."""

    IDLE = "idle"
    LOADING_MODEL = "loading_model"
    READY = "ready"
    DRIVING = "driving"
    STOPPED = "stopped"
    ERROR = "error"


ALL_STATES = frozenset(CarState)

#: command type -> the states in which it may start
ALLOWED_FROM: dict[str, frozenset[CarState]] = {
    "load_model": frozenset({CarState.IDLE, CarState.READY, CarState.STOPPED, CarState.ERROR}),
    "delete_models": frozenset({CarState.IDLE, CarState.READY, CarState.STOPPED, CarState.ERROR}),
    "start_driving": frozenset({CarState.READY, CarState.STOPPED, CarState.ERROR}),
    "stop_driving": ALL_STATES,
    "emergency_stop": ALL_STATES,
    "set_max_speed": ALL_STATES,
    "set_tail_light": ALL_STATES,
    "restart": ALL_STATES,
}

# The state machine's words must be the protocol's: a mismatch stops the import.
if tuple(CarState) != CAR_STATES:
    raise ImportError(f"CarState {tuple(CarState)} differs from car_client.protocol.CAR_STATES {CAR_STATES}")
if set(ALLOWED_FROM) != set(COMMAND_TYPES):
    raise ImportError(f"ALLOWED_FROM covers {sorted(ALLOWED_FROM)}, "
                      f"car_client.protocol.COMMAND_TYPES is {sorted(COMMAND_TYPES)}")

_VERBS = {
    "load_model": "load a model",
    "delete_models": "delete models",
    "start_driving": "start driving",
}


class CommandRefused(Exception):
    """A command that is impossible now; ``reason`` is the text sent to the server."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidTransition(RuntimeError):
    """An internal event that cannot happen in the current state (a daemon bug)."""


def check_command(
    state: CarState,
    command_type: str,
    params: dict,
    models_on_car: Iterable[str],
    loading_model_id: str | None = None,
) -> None:
    """Refuse ``command_type`` if it is impossible in ``state``.

    ``params`` is the command's params dict; ``models_on_car`` the model ids in the
    model store. Returns None when the command may run; raises
    :class:`CommandRefused` with a reason a human can act on otherwise.
    """
    if command_type not in ALLOWED_FROM:
        raise CommandRefused(f"unknown command type {command_type!r}")
    state = CarState(state)
    if state not in ALLOWED_FROM[command_type]:
        verb = _VERBS.get(command_type, command_type)
        if state is CarState.LOADING_MODEL:
            which = f" {loading_model_id}" if loading_model_id else ""
            raise CommandRefused(
                f"cannot {verb} while loading model{which}; wait until it is loaded"
            )
        if state is CarState.DRIVING:
            raise CommandRefused(f"cannot {verb} while driving; send stop_driving first")
        if state is CarState.IDLE and command_type == "start_driving":
            model_id = str(params.get("model_id", ""))
            raise CommandRefused(
                f"model {model_id} is not on the car (no model loaded); send load_model first"
            )
        raise CommandRefused(f"cannot {verb} in state {state.value}")  # pragma: no cover
    if command_type == "start_driving":
        model_id = str(params.get("model_id", ""))
        if model_id not in set(models_on_car):
            raise CommandRefused(f"model {model_id} is not on the car; send load_model first")


def rest_state(has_models: bool) -> CarState:
    """The state of a car doing nothing: ``ready`` with models, ``idle`` without."""
    return CarState.READY if has_models else CarState.IDLE


#: internal event -> {from state: to state}; ``None`` target = rest_state(has_models)
_TRANSITIONS: dict[str, dict[CarState, CarState | None]] = {
    "load_started": {s: CarState.LOADING_MODEL for s in ALLOWED_FROM["load_model"]},
    "load_done": {CarState.LOADING_MODEL: CarState.READY},
    "load_failed": {CarState.LOADING_MODEL: None},
    "drive_started": {s: CarState.DRIVING for s in ALLOWED_FROM["start_driving"]},
    "stop": {CarState.DRIVING: CarState.STOPPED},
    "emergency_stop": {s: CarState.STOPPED for s in CarState},
    "models_deleted": {CarState.IDLE: None, CarState.READY: None, CarState.STOPPED: None,
                       CarState.ERROR: CarState.ERROR},
    "fault": {s: CarState.ERROR for s in CarState},
}


#: events that leave other states unchanged: ``stop`` when not driving; a download
#: that ends after an ``emergency_stop`` already moved the car to ``stopped``
_NO_OP_OUTSIDE = frozenset({"stop", "load_done", "load_failed"})


def next_state(state: CarState, event: str, has_models: bool) -> CarState:
    """Pure transition function: the state after internal ``event``.

    ``event`` is one of ``load_started``, ``load_done``, ``load_failed``,
    ``drive_started``, ``stop``, ``emergency_stop``, ``models_deleted``, ``fault``.
    ``stop`` outside ``driving`` and ``load_done``/``load_failed`` outside
    ``loading_model`` leave the state unchanged. Raises
    :class:`InvalidTransition` for an event impossible in ``state``.
    """
    state = CarState(state)
    table = _TRANSITIONS.get(event)
    if table is None:
        raise InvalidTransition(f"unknown event {event!r}")
    if state not in table:
        if event in _NO_OP_OUTSIDE:
            return state
        raise InvalidTransition(f"event {event} is impossible in state {state.value}")
    target = table[state]
    return rest_state(has_models) if target is None else target


@dataclass(frozen=True)
class Snapshot:
    """What the heartbeat reports about the state machine."""

    state: CarState
    model_in_use: str | None
    loading_model_id: str | None
    error: str | None


class StateMachine:
    """The car's current state, guarded by a lock.

    ``on_change(snapshot)`` is called (outside the lock) after every change of
    state, so the daemon can send a heartbeat at once.
    """

    def __init__(self, has_models: bool, on_change: Callable[[Snapshot], None] | None = None):
        self._lock = threading.RLock()
        self._state = rest_state(has_models)
        self._model_in_use: str | None = None
        self._loading: str | None = None
        self._error: str | None = None
        self._on_change = on_change

    @property
    def state(self) -> CarState:
        """The current state."""
        return self._state

    def snapshot(self) -> Snapshot:
        """A consistent copy of state, model in use, model loading and error text."""
        with self._lock:
            return Snapshot(self._state, self._model_in_use, self._loading, self._error)

    def check(self, command_type: str, params: dict, models_on_car: Iterable[str]) -> None:
        """Raise :class:`CommandRefused` if the command is impossible right now."""
        with self._lock:
            check_command(self._state, command_type, params, models_on_car, self._loading)

    def apply(
        self,
        event: str,
        *,
        has_models: bool,
        model_id: str | None = None,
        error: str | None = None,
    ) -> CarState:
        """Apply internal ``event`` (see :func:`next_state`) and return the new state.

        ``model_id``: the model for ``load_started``/``drive_started``; ``error``: the
        text for ``fault``. Raises :class:`InvalidTransition` if impossible.
        """
        with self._lock:
            before = self._state
            after = next_state(before, event, has_models)
            self._state = after
            if event == "load_started":
                self._loading = model_id
            elif event in ("load_done", "load_failed"):
                self._loading = None
            if event == "drive_started":
                self._model_in_use = model_id
            if after is CarState.ERROR:
                self._error = error or self._error or "vehicle fault"
            elif event in ("load_started", "drive_started", "emergency_stop"):
                self._error = None
            changed = after is not before
            snap = self.snapshot()
        if changed and self._on_change is not None:
            self._on_change(snap)
        return after

    def forget_model(self, model_id: str) -> None:
        """Clear ``model_in_use`` if that model was deleted from the car."""
        with self._lock:
            if self._model_in_use == model_id:
                self._model_in_use = None
