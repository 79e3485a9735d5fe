"""DeepRacer params checks: what a step and the per-track constants must hold."""

from __future__ import annotations

import math

import pytest

from drem.training.reward_params import STEP_KEYS, check_constants, check_params
from tests.training.conftest import CONSTANTS, step


def test_a_full_step_passes_and_comes_back_as_plain_json():
    out = check_params({**step(), **CONSTANTS})
    assert out["waypoints"] == [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]
    assert out["closest_waypoints"] == [0, 1] and out["steps"] == 10 and out["x"] == 1.0


def test_a_step_with_constants_needs_only_the_step_keys():
    out = check_params(step(x=2), check_constants(CONSTANTS))
    assert set(out) == set(STEP_KEYS)
    assert out["x"] == 2.0 and isinstance(out["x"], float)


def test_object_avoidance_keys_are_optional_and_checked():
    objects = {"closest_objects": [0, 1], "objects_distance": [1.0, 2.5],
               "objects_heading": [0.0, 90.0], "objects_left_of_center": [True, False],
               "objects_location": [(1.0, 0.2), (2.0, -0.2)], "objects_speed": [0.0, 0.0]}
    out = check_params(step(**objects), CONSTANTS)
    assert out["objects_location"] == [(1.0, 0.2), (2.0, -0.2)]
    with pytest.raises(ValueError, match="objects_left_of_center"):
        check_params(step(**{**objects, "objects_left_of_center": [1, 0]}), CONSTANTS)


@pytest.mark.parametrize(("changes", "message"), [
    ({"speed": "fast"}, r"params\['speed'\] must be a finite number, not 'fast'"),
    ({"speed": math.nan}, r"params\['speed'\] must be a finite number"),
    ({"x": math.inf}, r"params\['x'\] must be a finite number"),
    ({"x": True}, r"params\['x'\] must be a finite number, not True"),
    ({"is_offtrack": 0}, r"params\['is_offtrack'\] must be true or false, not 0"),
    ({"steps": 1.5}, r"params\['steps'\] must be a whole number"),
    ({"closest_waypoints": [0]}, r"closest_waypoints'\] must be two whole numbers"),
    ({"closest_waypoints": [3, 4]}, r"must index waypoints \(0..3\)"),
    ({"heading": 200.0}, r"params\['heading'\] = 200.0 is outside -180..180"),
    ({"progress": -1}, r"params\['progress'\] = -1.0 is outside 0..100"),
    ({"speeed": 1.0}, r"unknown params key\(s\) \['speeed'\]"),
])
def test_a_bad_step_is_refused_with_the_key_named(changes, message):
    with pytest.raises(ValueError, match=message):
        check_params(step(**changes), CONSTANTS)


def test_missing_keys_are_listed():
    params = step()
    del params["speed"], params["heading"]
    with pytest.raises(ValueError, match=r"params miss DeepRacer key\(s\) \['heading', 'speed'\]"):
        check_params(params, CONSTANTS)
    with pytest.raises(ValueError, match=r"\['track_length', 'track_width', 'waypoints'\]"):
        check_params(step())  # no constants given: the step must carry the track keys
    with pytest.raises(ValueError, match="must be a mapping"):
        check_params([("x", 1.0)], CONSTANTS)


@pytest.mark.parametrize(("changes", "message"), [
    ({"waypoints": [(0.0, 0.0)]}, "at least 2 points"),
    ({"waypoints": [(0.0, 0.0, 1.0), (1.0, 1.0, 1.0)]}, r"list of \(x, y\) points"),
    ({"track_width": -0.5}, r"track_width'\] = -0.5 is outside"),
    ({"track_length": None}, "finite number"),
    ({"speed": 1.0}, r"unknown params key\(s\) \['speed'\]"),
])
def test_bad_constants_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        check_constants({**CONSTANTS, **changes})
