"""Donkey Car per-model settings: what a racer sets at upload, what a shipped config says.

A Donkey model is trained with settings the car must drive it with: the throttle range
of a categorical model (donkeycar's ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE``) and the
rows cut from the 120x160 camera frame before the model (``ROI_CROP_TOP``,
``ROI_CROP_BOTTOM``; the model's input is then ``120 - top - bottom`` rows high).
Stored on the model record as ``model_settings`` (``{"categorical_throttle_range":
float, "crop_top": int, "crop_bottom": int}``, keys present only when known) and sent
to the car in ``load_model``.

Where they come from, first wins per key: the racer's upload fields
(:func:`settings_from_upload`), a donkeycar ``myconfig.py`` / ``config.py`` shipped in
the zip beside the model (:func:`parse_donkey_config`: read with :mod:`ast`, never
executed), and the model's input height (:func:`resolve_settings`), which also refuses
a crop that does not match it. No Flask imports except through :mod:`drem.platform.inputs`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from drem.models_mgr.inspect_types import ModelRejected
from drem.platform.errors import ServiceError
from drem.platform.inputs import text, whole_number

__all__ = ["CONFIG_FILE_NAMES", "DONKEY_FORMATS", "FRAME_ROWS", "SETTING_NAMES", "checked_settings",
           "parse_donkey_config",
           "resolve_settings", "settings_from_upload"]

#: Rows of the car's camera frame (160x120); the car client checks the same bounds
#: (``car_client.pilots.donkey.ModelSettings``, which drem may not import).
FRAME_ROWS = 120
#: Formats the settings apply to (DeepRacer archives carry their own metadata).
DONKEY_FORMATS = ("keras", "tflite", "savedmodel")
#: The settings, in the field's terms.
SETTING_NAMES = ("categorical_throttle_range", "crop_top", "crop_bottom")
#: Shipped config files read from a zip (donkeycar's names), first found wins.
CONFIG_FILE_NAMES = ("myconfig.py", "config.py")
#: donkeycar config name -> drem setting name.
_DONKEY_NAMES = {"MODEL_CATEGORICAL_MAX_THROTTLE_RANGE": "categorical_throttle_range",
                 "ROI_CROP_TOP": "crop_top", "ROI_CROP_BOTTOM": "crop_bottom"}


def settings_from_upload(data: Mapping[str, Any]) -> dict:
    """The racer's settings from upload fields (a form, a query string or JSON).

    ``categorical_throttle_range``: a number with 0 < x <= 1; ``crop_top``,
    ``crop_bottom``: whole rows 0..119 with top + bottom < 120. Blank or missing
    fields are left out. Returns ``{name: value}``. Raises ServiceError naming the
    field for a bad value."""
    out: dict = {}
    raw = data.get("categorical_throttle_range")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(raw)
    rng = text({"categorical_throttle_range": raw}, "categorical_throttle_range", max_len=20)
    if rng is not None:
        try:
            value = float(rng)
        except ValueError:
            raise ServiceError("categorical_throttle_range must be a number, e.g. 0.8",
                               "categorical_throttle_range") from None
        if not 0 < value <= 1:
            raise ServiceError(f"categorical_throttle_range must be above 0 and at most 1, got {rng}",
                               "categorical_throttle_range")
        out["categorical_throttle_range"] = value
    for name in ("crop_top", "crop_bottom"):
        value = whole_number(dict(data), name, 0, FRAME_ROWS - 1, required=False)
        if value is not None:
            out[name] = value
    if out.get("crop_top", 0) + out.get("crop_bottom", 0) >= FRAME_ROWS:
        raise ServiceError(f"crop_top + crop_bottom must be less than {FRAME_ROWS} (the camera's rows)",
                           "crop_bottom")
    return out


def checked_settings(data: Mapping[str, Any]) -> dict:
    """``data`` with only known, in-range settings (None values dropped); raises
    ``ValueError`` naming the bad value: a throttle range outside (0, 1], a crop that
    is not whole rows 0..119, crops that add up to 120 rows or more."""
    out: dict = {}
    rng = data.get("categorical_throttle_range")
    if rng is not None:
        if isinstance(rng, bool) or not isinstance(rng, (int, float)) or not 0 < float(rng) <= 1:
            raise ValueError(f"categorical_throttle_range must be a number in (0, 1], got {rng!r}")
        out["categorical_throttle_range"] = float(rng)
    for key in ("crop_top", "crop_bottom"):
        v = data.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < FRAME_ROWS:
            raise ValueError(f"{key} must be a whole number of rows 0..{FRAME_ROWS - 1}, got {v!r}")
        out[key] = v
    if out.get("crop_top", 0) + out.get("crop_bottom", 0) >= FRAME_ROWS:
        raise ValueError(f"crop_top + crop_bottom must be less than {FRAME_ROWS} rows")
    return out


def parse_donkey_config(source: bytes, filename: str = "myconfig.py") -> dict:
    """The settings a donkeycar config file assigns, read with :mod:`ast` (the file is
    parsed, never executed: imports and calls in it do nothing).

    Reads top-level assignments ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 0.8``,
    ``ROI_CROP_TOP = 40``, ``ROI_CROP_BOTTOM = 0`` (the last assignment wins, as when
    Python runs it); other lines are ignored. Returns ``{setting name: value}``.
    Raises :class:`ModelRejected` for a file that is not Python, or one of those names
    set to something other than a plain number or to a value out of range."""
    try:
        tree = ast.parse(source.decode("utf-8", "replace"), filename=filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ModelRejected(f"{filename} in the zip is not a readable Python config ({exc}).") from exc
    found: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _DONKEY_NAMES:
                try:
                    literal = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, RecursionError):
                    raise ModelRejected(f"{filename}: {target.id} must be a plain number "
                                        f"(line {node.lineno}).") from None
                found[_DONKEY_NAMES[target.id]] = literal
    try:
        return checked_settings(found)
    except ValueError as exc:
        raise ModelRejected(f"{filename}: {exc}.") from exc


def resolve_settings(uploaded: Mapping | None, shipped: Mapping | None, input_rows: int | None) -> dict:
    """The settings a model is stored and driven with.

    uploaded: the racer's (:func:`settings_from_upload`), they win; shipped: from a
    config in the zip (:func:`parse_donkey_config`); input_rows: the model's input
    height when inspection could read it (None: the car checks it when it loads).
    The crop is one setting: a racer who gives either crop replaces the shipped crop
    whole. A known height fills in the crop (``crop_top = 120 - rows`` when neither crop is
    given, the other one when one is). Raises :class:`ModelRejected` when the crop
    does not match the height, with both numbers in the message."""
    uploaded, shipped = dict(uploaded or {}), dict(shipped or {})
    if "crop_top" in uploaded or "crop_bottom" in uploaded:
        shipped.pop("crop_top", None)
        shipped.pop("crop_bottom", None)
    merged = {**shipped, **uploaded}
    try:
        settings = checked_settings(merged)
    except ValueError as exc:
        raise ModelRejected(f"Bad model settings: {exc}.") from exc
    if input_rows is None:
        return settings
    cut = FRAME_ROWS - int(input_rows)
    top, bottom = settings.get("crop_top"), settings.get("crop_bottom")
    if top is None and bottom is None:
        top, bottom = cut, 0
    elif top is None:
        top = cut - bottom
    elif bottom is None:
        bottom = cut - top
    if top < 0 or bottom < 0 or top + bottom != cut:
        raise ModelRejected(
            f"The crop (top {settings.get('crop_top', 0)}, bottom {settings.get('crop_bottom', 0)} rows) "
            f"does not match the model: its input is {input_rows} rows high, so top + bottom must be "
            f"{cut} (120 - {input_rows}).")
    if cut:
        settings.update(crop_top=top, crop_bottom=bottom)
    return settings
