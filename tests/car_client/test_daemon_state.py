"""The car state machine and command validation (pure, no I/O)."""

import subprocess
import sys
from pathlib import Path

import pytest

from car_client.daemon.commands import validate_command
from car_client.daemon.state import (
    ALLOWED_FROM,
    CarState,
    CommandRefused,
    InvalidTransition,
    StateMachine,
    check_command,
    next_state,
)
from car_client.protocol import CAR_STATES, COMMAND_TYPES

REPO = Path(__file__).resolve().parents[2]

S = CarState


@pytest.mark.parametrize(
    "state, event, has_models, expected",
    [
        (S.IDLE, "load_started", False, S.LOADING_MODEL),
        (S.READY, "load_started", True, S.LOADING_MODEL),
        (S.STOPPED, "load_started", True, S.LOADING_MODEL),
        (S.ERROR, "load_started", True, S.LOADING_MODEL),
        (S.LOADING_MODEL, "load_done", True, S.READY),
        (S.LOADING_MODEL, "load_failed", False, S.IDLE),
        (S.LOADING_MODEL, "load_failed", True, S.READY),
        (S.READY, "drive_started", True, S.DRIVING),
        (S.STOPPED, "drive_started", True, S.DRIVING),
        (S.DRIVING, "stop", True, S.STOPPED),
        (S.READY, "stop", True, S.READY),  # idempotent stop
        (S.IDLE, "stop", False, S.IDLE),
        (S.DRIVING, "emergency_stop", True, S.STOPPED),
        (S.LOADING_MODEL, "emergency_stop", False, S.STOPPED),
        (S.IDLE, "emergency_stop", False, S.STOPPED),
        (S.STOPPED, "load_done", True, S.STOPPED),  # download ended after an e-stop
        (S.STOPPED, "models_deleted", False, S.IDLE),
        (S.READY, "models_deleted", True, S.READY),
        (S.DRIVING, "fault", True, S.ERROR),
    ],
)
def test_transitions(state, event, has_models, expected):
    assert next_state(state, event, has_models) is expected


@pytest.mark.parametrize(
    "state, event",
    [(S.IDLE, "drive_started"), (S.DRIVING, "load_started"),
     (S.LOADING_MODEL, "drive_started"), (S.DRIVING, "models_deleted"), (S.READY, "fly")],
)
def test_impossible_transitions_raise(state, event):
    with pytest.raises(InvalidTransition):
        next_state(state, event, True)


@pytest.mark.parametrize(
    "state, command, params, models, words",
    [
        (S.LOADING_MODEL, "start_driving", {"model_id": "12"}, ["12"], "while loading model 9"),
        (S.DRIVING, "start_driving", {"model_id": "12"}, ["12"], "stop_driving first"),
        (S.DRIVING, "load_model", {"model_id": "13"}, ["12"], "while driving"),
        (S.DRIVING, "delete_models", {"model_ids": []}, ["12"], "while driving"),
        (S.LOADING_MODEL, "load_model", {"model_id": "13"}, [], "while loading model 9"),
        (S.IDLE, "start_driving", {"model_id": "12"}, [], "model 12 is not on the car"),
        (S.READY, "start_driving", {"model_id": "99"}, ["12"], "model 99 is not on the car"),
        (S.READY, "jump", {}, ["12"], "unknown command type 'jump'"),
    ],
)
def test_impossible_commands_are_refused_with_a_reason(state, command, params, models, words):
    with pytest.raises(CommandRefused) as info:
        check_command(state, command, params, models, loading_model_id="9")
    assert words in info.value.reason


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize(
    "command", ["stop_driving", "emergency_stop", "set_max_speed", "set_tail_light", "restart"]
)
def test_safety_and_settings_commands_are_never_refused(state, command):
    check_command(state, command, {}, [])


def test_possible_commands_pass():
    check_command(S.READY, "start_driving", {"model_id": "12"}, ["12"])
    check_command(S.STOPPED, "start_driving", {"model_id": "12"}, ["12", "13"])
    check_command(S.IDLE, "load_model", {"model_id": "1"}, [])
    check_command(S.ERROR, "delete_models", {"model_ids": []}, ["1"])


def test_state_machine_tracks_model_error_and_notifies():
    seen = []
    machine = StateMachine(has_models=False, on_change=seen.append)
    assert machine.state is S.IDLE
    machine.apply("load_started", has_models=False, model_id="12")
    with pytest.raises(CommandRefused, match="loading model 12"):
        machine.check("start_driving", {"model_id": "12"}, ["12"])
    machine.apply("load_done", has_models=True)
    machine.apply("drive_started", has_models=True, model_id="12")
    assert machine.snapshot().model_in_use == "12"
    machine.apply("fault", has_models=True, error="motor controller gone")
    snap = machine.snapshot()
    assert (snap.state, snap.error) == (S.ERROR, "motor controller gone")
    machine.apply("emergency_stop", has_models=True)
    assert machine.snapshot().error is None
    machine.apply("stop", has_models=True)  # no change, no notification
    assert [s.state for s in seen] == [S.LOADING_MODEL, S.READY, S.DRIVING, S.ERROR, S.STOPPED]
    assert StateMachine(has_models=True).state is S.READY


@pytest.mark.parametrize(
    "command, params, words",
    [
        ("load_model", {"model_id": "1", "url": "http://x/m", "sha256": "ab"}, "64 hex"),
        ("load_model", {"model_id": "1", "sha256": "a" * 64}, "needs url"),
        ("load_model", {"model_id": "1", "url": "ftp://x", "sha256": "a" * 64}, "http"),
        ("load_model", {"model_id": "1", "url": "http://x", "sha256": "a" * 64, "size": -1},
         "size"),
        ("delete_models", {}, "model_ids"),
        ("start_driving", {}, "model_id"),
        ("set_max_speed", {"max_speed_mps": 4.5}, "0.1 to 4.0"),
        ("set_max_speed", {"max_speed_mps": "fast"}, "0.1 to 4.0"),
        ("set_tail_light", {"colour": "black"}, "one of white"),
        ("warp", {}, "unknown command type"),
    ],
)
def test_validate_command_refuses_bad_params(command, params, words):
    assert words in validate_command(command, params)


def test_validate_command_accepts_good_params():
    assert validate_command("set_max_speed", {"max_speed_mps": 0.1}) is None
    assert validate_command("set_tail_light", {"colour": "pink"}) is None
    assert validate_command("delete_models", {"model_ids": []}) is None
    assert validate_command("load_model", {"model_id": 5, "url": "https://h/m?sig=1",
                                           "sha256": "F" * 64, "size": 10}) is None


def test_state_machine_uses_the_protocol_words():
    """CarState and the command table are the protocol's words (car_client.protocol)."""
    assert tuple(CarState) == CAR_STATES
    assert set(ALLOWED_FROM) == set(COMMAND_TYPES)


@pytest.mark.parametrize("patch, words", [
    ("p.CAR_STATES = p.CAR_STATES + ('flying',)", "CAR_STATES"),
    ("p.COMMAND_TYPES = p.COMMAND_TYPES[:-1]", "COMMAND_TYPES"),
])
def test_a_protocol_mismatch_stops_the_import(patch, words):
    """If protocol.py and the state machine disagree, importing the state machine fails."""
    code = f"import car_client.protocol as p\n{patch}\nimport car_client.daemon.state"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and words in proc.stderr
