"""A small JSON API client for the demo (what a script at a venue would use)."""

from __future__ import annotations

import requests


class ApiError(RuntimeError):
    """The server answered an error; the message has the method, path, status and error."""


class Api:
    """Talks to one drem server with one personal API token (or none)."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 30):
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect=(200, 201, 204), **kwargs):
        """Send a request; returns the decoded JSON (None for 204). ApiError otherwise."""
        resp = self.session.request(method, self.base_url + path, timeout=self.timeout_s, **kwargs)
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
