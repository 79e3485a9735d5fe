"""Shared pieces of the reward-function tests: a small track's constants and one step."""

from __future__ import annotations

import pytest

#: Per-track params: a 4 m square loop 0.76 m wide (metres).
CONSTANTS = {"track_width": 0.76, "track_length": 16.0,
             "waypoints": [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]}


def step(**changes) -> dict:
    """One step's DeepRacer params (car on the centre line, 1 m/s, straight), changed by
    ``changes``."""
    params = {"all_wheels_on_track": True, "x": 1.0, "y": 0.0, "distance_from_center": 0.0,
              "is_left_of_center": False, "heading": 0.0, "progress": 6.25, "steps": 10,
              "speed": 1.0, "steering_angle": 0.0, "closest_waypoints": [0, 1],
              "is_offtrack": False, "is_reversed": False, "is_crashed": False}
    params.update(changes)
    return params


@pytest.fixture
def constants() -> dict:
    return {**CONSTANTS, "waypoints": list(CONSTANTS["waypoints"])}
