"""Reading whole numbers, flags and text out of untrusted input, with ranges.

The one place that turns a JSON body, a form or a query string into typed values.
Every reader raises :class:`~drem.platform.errors.ServiceError` naming the field (the
API answers ``400 {"error", "field"}``) or, for the ``*_arg`` readers of query
strings, falls back to the default. Booleans are never whole numbers (``True`` is not
``1``), and a whole number sent as text (``"12"``) is accepted where a person may have
typed it (forms, query strings) but not in a JSON body field marked ``strict``.

Sizes of ids: a database id fits in 31 bits, so ``MAX_ID`` bounds every id and a huge
number is a clear 400, never a 500 from the database driver.
"""

from __future__ import annotations

import re
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from drem.platform.errors import ServiceError

#: Largest database id accepted (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """The ``<int:…>`` URL converter of the app: a path number above :data:`MAX_ID`
    (``/api/fleet/cars/99999999999999999999``) matches no route, so it answers 404
    instead of reaching the database driver (a 500)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 - werkzeug's names
                 max: int | None = MAX_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _whole(value: Any, strict: bool) -> int | None:
    """``value`` as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not strict and value.is_integer():
        return int(value)
    if isinstance(value, str) and not strict:
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) <= 19:
            return int(text)
    return None


def whole_number(data: dict, name: str, lo: int = 0, hi: int = MAX_ID, *, required: bool = True,
                 default: int | None = None, strict: bool = False) -> int | None:
    """The whole number ``data[name]`` within ``lo..hi``.

    A missing, null or empty value gives ``default`` when not ``required``. ``strict``
    refuses numbers sent as text (device and car messages, where text means a bug).
    Raises ServiceError(field=name) for a missing required value, a non-number or a
    value out of range.
    """
    raw = data.get(name)
    if raw is None or raw == "":
        if required:
            raise ServiceError(f"{name} is required", name)
        return default
    value = _whole(raw, strict)
    if value is None:
        raise ServiceError(f"{name} must be a whole number", name)
    if not lo <= value <= hi:
        raise ServiceError(f"{name} must be between {lo} and {hi}, got {value}", name)
    return value


def record_id(data: dict, name: str, *, required: bool = True) -> int | None:
    """A database id (1..:data:`MAX_ID`) from ``data[name]``; see :func:`whole_number`."""
    return whole_number(data, name, 1, MAX_ID, required=required)


def record_ids(data: dict, name: str, *, max_items: int = 1000) -> list[int]:
    """The list of database ids ``data[name]`` (``[3, 5]``); ``[]`` when missing or null.

    Raises ServiceError(field=name) when it is not a list, has more than ``max_items``
    entries, or an entry is not an id (1..:data:`MAX_ID`; a bool is not an id).
    """
    raw = data.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ServiceError(f"{name} must be a list of ids", name)
    if len(raw) > max_items:
        raise ServiceError(f"{name} has more than {max_items} entries", name)
    ids = []
    for item in raw:
        value = _whole(item, strict=False)
        if value is None or not 1 <= value <= MAX_ID:
            raise ServiceError(f"{name} must be a list of ids; {item!r} is not one", name)
        ids.append(value)
    return ids


def text(data: dict, name: str, min_len: int = 0, max_len: int = 200, *, required: bool = False,
         default: str | None = None) -> str | None:
    """``data[name]`` as stripped text of ``min_len..max_len`` characters.

    A missing or blank value gives ``default`` unless ``required`` (ServiceError). Text
    that is not a string (a number, a list) or has the wrong length raises ServiceError.
    """
    raw = data.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise ServiceError(f"{name} is required", name)
        return default
    if not isinstance(raw, str):
        raise ServiceError(f"{name} must be text", name)
    value = raw.strip()
    if not min_len <= len(value) <= max_len:
        raise ServiceError(f"{name} must have {min_len}-{max_len} characters", name)
    return value


def flag(data: dict, name: str, default: bool = False) -> bool:
    """``data[name]`` as a bool: JSON true/false, or the form words on/1/true/yes
    and off/0/false/no/"" . Raises ServiceError for anything else."""
    raw = data.get(name)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("on", "1", "true", "yes"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("off", "0", "false", "no", ""):
        return False
    raise ServiceError(f"{name} must be true or false", name)


_DURATION = re.compile(r"^(?:(\d{1,3}):)?(\d{1,4})(?:\.(\d{1,3}))?$")


def duration_ms(data: dict, name: str, lo: int = 0, hi: int = MAX_ID) -> int:
    """A time ``data[name]`` in whole milliseconds within ``lo..hi``, as a person types it:
    a whole number of ms (``83500``, JSON or text), ``m:ss.mmm`` (``1:23.5``, ``1:23.500``,
    ``1:23``) or seconds with a decimal point (``83.5``). Raises ServiceError(field=name)
    when missing, in another form, or out of range (the message shows the range in s)."""
    raw = data.get(name)
    if raw is None or raw == "":
        raise ServiceError(f"{name} is required", name)
    value = _whole(raw, strict=True) if not isinstance(raw, str) else None
    if isinstance(raw, str):
        typed = raw.strip()
        found = _DURATION.match(typed)
        if typed.isdigit() and len(typed) <= 10:
            value = int(typed)  # digits only: milliseconds
        elif found is not None and (found.group(1) is not None or found.group(3) is not None):
            minutes, seconds, fraction = found.groups()
            if minutes is not None and int(seconds) > 59:
                raise ServiceError(f"{name}: seconds after the colon go up to 59", name)
            value = (int(minutes or 0) * 60 + int(seconds)) * 1000 + int((fraction or "0").ljust(3, "0"))
    if value is None:
        raise ServiceError(f"{name}: type a time in ms (83500) or m:ss.mmm (1:23.500)", name)
    if not lo <= value <= hi:
        raise ServiceError(f"{name} must be between {lo / 1000:g} s and {hi / 1000:g} s", name)
    return value


def int_arg(name: str, default: int, lo: int = 1, hi: int = 1000) -> int:
    """A whole-number query-string argument clamped to ``lo..hi``; missing or bad text
    gives ``default`` (a display URL with a typo still shows the board)."""
    value = _whole(request.args.get(name), strict=False)
    return default if value is None else max(lo, min(hi, value))


def id_arg(name: str) -> int | None:
    """An optional id in the query string (``?fleet_id=3``): None when absent;
    ServiceError(field=name) when present but not an id."""
    return record_id(request.args, name, required=False)
