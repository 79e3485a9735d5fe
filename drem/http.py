"""Small helpers shared by the JSON APIs."""

from __future__ import annotations

from flask import request

from drem.errors import ServiceError


def json_body() -> dict:
    """The request's JSON object; ServiceError when the body is not a JSON object."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError("send a JSON object with Content-Type: application/json")
    return data


def int_arg(name: str, default: int, lo: int = 1, hi: int = 1000) -> int:
    """A whole-number query argument clamped to ``lo..hi`` (bad text gives ``default``)."""
    try:
        return max(lo, min(hi, int(request.args.get(name, default))))
    except (TypeError, ValueError):
        return default


def no_csrf(view):
    """Mark a JSON endpoint that carries its own credentials (password, code or car token in
    the body) and grants nothing through the session cookie, so CSRF does not apply."""
    view.csrf_exempt = True
    return view
