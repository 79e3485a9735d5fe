"""A small JSON API client for the demo (what a script at a venue would use)."""

from __future__ import annotations

import time

import requests

#: Answers of a reverse proxy when no web process could take the request.
PROXY_UNAVAILABLE = (502, 503, 504)


class ApiError(RuntimeError):
    """The server answered an error; the message has the method, path, status and error."""


class Api:
    """Talks to one drem server with one personal API token (or none)."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 30, retry_s: float = 30):
        self.base_url, self.timeout_s, self.retry_s = base_url.rstrip("/"), timeout_s, retry_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect=(200, 201, 204), **kwargs):
        """Send a request; returns the decoded JSON (None for 204). ApiError otherwise.

        While the server restarts (a crashed worker, a proxy with no live backend) the
        request is retried for up to ``retry_s`` seconds, as an operator would press
        again: a GET on any connection error or proxy 502/503/504, anything else only
        when it cannot have reached the server (connection refused, proxy 503).
        """
        deadline = time.monotonic() + self.retry_s
        while True:
            body = kwargs.get("data")
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                resp = self.session.request(method, self.base_url + path, timeout=self.timeout_s, **kwargs)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # a GET is always safe to repeat; anything else only if it never arrived
                if time.monotonic() < deadline and (method == "GET" or _not_sent(exc)):
                    time.sleep(0.3)
                    continue
                raise
            retry = resp.status_code in PROXY_UNAVAILABLE if method == "GET" else resp.status_code == 503
            if retry and resp.status_code not in expect and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            break
        if resp.status_code not in expect:
            try:
                detail = resp.json().get("error")
            except ValueError:
                detail = resp.text[:300]
            raise ApiError(f"{method} {path} -> {resp.status_code}: {detail}")
        return None if resp.status_code == 204 else resp.json()

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.call("POST", path, json=json if json is not None else {}, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.call("PATCH", path, json=json or {}, **kwargs)

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> Api:
        """An Api with a new token for ``username``."""
        token = cls(base_url).post("/api/auth/tokens", {"username": username, "password": password,
                                                        "name": "drem demo"})["token"]
        return cls(base_url, token)

    @classmethod
    def with_code(cls, base_url: str, code: str) -> Api:
        """An Api for the racer who got this one-time sign-in code."""
        token = cls(base_url).post("/api/auth/code", {"code": code})["token"]
        return cls(base_url, token)


def _not_sent(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached the server (the connection was refused)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text
