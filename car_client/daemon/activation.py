"""One-time activation: trade an activation code for a car token (protocol section 1).

:func:`exchange_code` is shared with the lap timer (``car_client.timer``)."""

from __future__ import annotations

import time

import requests

from car_client import __version__
from car_client.daemon.config import DEFAULT_HEARTBEAT_S, CarConfig, normalize_server_url

ACTIVATE_PATH = "/api/car/activate"


class ActivationError(Exception):
    """Activation failed; the message is meant for the person at the car."""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:200] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return f"HTTP {response.status_code}"


def exchange_code(server: str, path: str, body: dict, device: str = "car",
                  timeout_s: float = 10.0) -> dict:
    """POST a one-time code exchange ``body`` to ``server + path`` and return the JSON answer.

    Shared by the car (``/api/car/activate``) and the lap timer (``/api/timer/activate``);
    ``device`` names the device in messages. Raises :class:`ActivationError` with a clear
    message when the server is unreachable, refuses the code (403: expired, already used,
    unknown), rejects the request (400) or answers something that is not a JSON object.
    """
    url = server + path
    try:
        response = requests.post(url, json=body, timeout=timeout_s)
    except requests.exceptions.ConnectionError as exc:
        raise ActivationError(
            f"cannot reach the drem server at {server}: is it running, and is this {device} on "
            f"the venue network? ({exc.__class__.__name__})"
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise ActivationError(
            f"the drem server at {server} did not answer within {timeout_s:g} s"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise ActivationError(f"activation request to {url} failed: {exc}") from exc

    if response.status_code == 403:
        raise ActivationError(
            f"activation code refused by the server: {_error_text(response)}. "
            "Ask an admin or operator for a new activation code."
        )
    if response.status_code == 400:
        raise ActivationError(f"the server rejected the activation request: {_error_text(response)}")
    if response.status_code not in (200, 201):
        raise ActivationError(
            f"unexpected answer from {url}: HTTP {response.status_code} {_error_text(response)}"
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise ActivationError(f"the server's activation answer is not JSON: {response.text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ActivationError(f"the server's activation answer is not an object: {response.text[:200]!r}")
    return data


def activate(
    server: str,
    code: str,
    hostname: str,
    software_version: str = __version__,
    timeout_s: float = 10.0,
) -> CarConfig:
    """POST the activation code to ``server`` and return the car's new config.

    ``server``: base URL such as ``http://drem.local:5000``; ``code``: the one-time
    code; ``hostname``: the car's name. Raises :class:`ActivationError` with a clear
    message when the server is unreachable, refuses the code (403: expired, already
    used, unknown), rejects the request (400) or answers something unexpected.
    """
    server = normalize_server_url(server)
    body = {"code": code.strip(), "hostname": hostname, "software_version": software_version}
    data = exchange_code(server, ACTIVATE_PATH, body, "car", timeout_s)
    try:
        token = str(data["token"])
        car_id = data["car_id"]
    except (KeyError, TypeError) as exc:
        raise ActivationError(
            f"the server's activation answer lacks a token or car id: {data!r:.200}"
        ) from exc
    try:
        interval = float(data.get("heartbeat_interval_s") or DEFAULT_HEARTBEAT_S)
    except (TypeError, ValueError):
        interval = DEFAULT_HEARTBEAT_S
    return CarConfig(
        server=server,
        car_id=car_id,
        token=token,
        hostname=str(data.get("hostname") or hostname),
        heartbeat_interval_s=interval,
        activated_at=time.time(),
        software_version=software_version,
    )
