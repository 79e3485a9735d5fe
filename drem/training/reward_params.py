"""The ``params`` a DeepRacer reward function receives: keys, types, checks.

DeepRacer's documented keys (AWS DeepRacer Developer Guide, "Input parameters of the
AWS DeepRacer reward function"); units as there: metres, m/s, degrees, per cent.

* per step (:data:`STEP_KEYS`, all required): ``all_wheels_on_track`` bool, ``x``/``y``
  float m, ``distance_from_center`` float m, ``is_left_of_center`` bool, ``heading``
  float degrees (-180..180), ``progress`` float per cent (0..100), ``steps`` int,
  ``speed`` float m/s, ``steering_angle`` float degrees (-30..30, +left),
  ``closest_waypoints`` [int, int], ``is_offtrack`` bool, ``is_reversed`` bool,
  ``is_crashed`` bool;
* per track (:data:`TRACK_KEYS`, required, usually given once as the sandbox's
  ``constants``): ``track_width`` float m, ``track_length`` float m, ``waypoints``
  [(x, y), ...] m;
* object avoidance (:data:`OBJECT_KEYS`, optional): ``closest_objects`` [int, int],
  ``objects_distance`` [float], ``objects_heading`` [float],
  ``objects_left_of_center`` [bool], ``objects_location`` [(x, y)], ``objects_speed``
  [float].

Any other key is refused, so a typo in the caller never reaches a racer's function
as a missing key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["STEP_KEYS", "TRACK_KEYS", "OBJECT_KEYS", "check_params", "check_constants"]

_BOOL, _FLOAT, _INT, _PAIR, _POINTS, _FLOATS, _BOOLS = (
    "bool", "float", "int", "int pair", "points", "floats", "bools")

STEP_KEYS: dict[str, str] = {
    "all_wheels_on_track": _BOOL, "x": _FLOAT, "y": _FLOAT, "distance_from_center": _FLOAT,
    "is_left_of_center": _BOOL, "heading": _FLOAT, "progress": _FLOAT, "steps": _INT,
    "speed": _FLOAT, "steering_angle": _FLOAT, "closest_waypoints": _PAIR,
    "is_offtrack": _BOOL, "is_reversed": _BOOL, "is_crashed": _BOOL,
}
TRACK_KEYS: dict[str, str] = {"track_width": _FLOAT, "track_length": _FLOAT,
                              "waypoints": _POINTS}
OBJECT_KEYS: dict[str, str] = {
    "closest_objects": _PAIR, "objects_distance": _FLOATS, "objects_heading": _FLOATS,
    "objects_left_of_center": _BOOLS, "objects_location": _POINTS, "objects_speed": _FLOATS,
}
_ALL_KEYS = {**STEP_KEYS, **TRACK_KEYS, **OBJECT_KEYS}
_STEP, _TRACK = frozenset(STEP_KEYS), frozenset(TRACK_KEYS)
_STEP_OR_OBJECT = frozenset({**STEP_KEYS, **OBJECT_KEYS})
_WHOLE = frozenset(_ALL_KEYS)
#: Ranges DeepRacer documents, checked so a simulator bug shows as a clear error.
_RANGES = {"heading": (-180.0, 180.0), "progress": (0.0, 100.0), "speed": (0.0, math.inf),
           "distance_from_center": (0.0, math.inf), "track_width": (0.0, math.inf),
           "track_length": (0.0, math.inf), "steps": (0, math.inf)}


def _float(key: str, value) -> float:
    if (type(value) is float or type(value) is int) and math.isfinite(value):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"params[{key!r}] must be a finite number, not {value!r}")
    return float(value)


def _value(key: str, kind: str, value):
    if kind == _FLOAT:
        return _float(key, value)
    if kind == _BOOL:
        if value is not True and value is not False:
            raise ValueError(f"params[{key!r}] must be true or false, not {value!r}")
        return value
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"params[{key!r}] must be a whole number, not {value!r}")
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"params[{key!r}] must be a list, not {type(value).__name__}")
    if kind == _PAIR:
        if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ValueError(f"params[{key!r}] must be two whole numbers (indices), not {value!r}")
        return [value[0], value[1]]
    if kind == _POINTS:
        if any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in value):
            raise ValueError(f"params[{key!r}] must be a list of (x, y) points in metres")
        return [(_float(key, p[0]), _float(key, p[1])) for p in value]
    if kind == _BOOLS:
        if any(not isinstance(v, bool) for v in value):
            raise ValueError(f"params[{key!r}] must be a list of true/false values")
        return list(value)
    return [_float(key, v) for v in value]


def _checked(params: Mapping, required: frozenset, allowed: frozenset) -> dict:
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of DeepRacer keys, not {type(params).__name__}")
    keys = params.keys()
    if not keys <= allowed:
        unknown = sorted(str(k) for k in keys if k not in allowed)
        raise ValueError(f"unknown params key(s) {unknown}: DeepRacer's reward function has no "
                         "such input")
    if not required <= keys:
        raise ValueError(f"params miss DeepRacer key(s) {sorted(required - keys)}")
    out = {}
    for key, value in params.items():
        out[key] = value = _value(key, _ALL_KEYS[key], value)
        bounds = _RANGES.get(key)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"params[{key!r}] = {value!r} is outside "
                             f"{bounds[0]:g}..{bounds[1]:g}")
    return out


def check_constants(constants: Mapping) -> dict:
    """Check the per-track keys (``track_width`` m, ``track_length`` m, ``waypoints``
    [(x, y) m, ...], at least 2 points) given once to a sandbox.

    Returns a plain dict (points as tuples). Raises ``ValueError`` naming the bad key."""
    out = _checked(constants, _TRACK, _TRACK)
    if len(out["waypoints"]) < 2:
        raise ValueError("params['waypoints'] must hold at least 2 points")
    return out


def check_params(params: Mapping, constants: Mapping | None = None) -> dict:
    """Check one step's ``params`` (see the module docstring for the keys and units).

    ``constants``: the per-track keys already checked by :func:`check_constants`; then
    ``params`` holds the per-step keys (and optional object keys) only, else it must
    hold all of them. Returns a plain JSON-ready dict of the step's keys. Raises
    ``ValueError`` naming the first bad, missing or unknown key."""
    if constants is None:
        out = _checked(params, _STEP | _TRACK, _WHOLE)
        n_points = len(out["waypoints"])
    else:
        out = _checked(params, _STEP, _STEP_OR_OBJECT)
        n_points = len(constants["waypoints"])
    if not all(0 <= i < n_points for i in out["closest_waypoints"]):
        raise ValueError(f"params['closest_waypoints'] = {out['closest_waypoints']} must "
                         f"index waypoints (0..{n_points - 1})")
    return out
