"""Fixtures for the fleet tests: activated cars, connected car sockets, available models.

Everything runs in process: the app from tests/conftest.py (SQLite or PostgreSQL,
threading Socket.IO) and Flask-SocketIO's test client for the ``/car`` and
``/fleet`` namespaces.
"""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta

import pytest

from drem.auth.models import User
from drem.models_mgr.models import RacerModel
from drem.models_mgr.service import get_storage
from drem.platform.db_types import utcnow
from drem.platform.extensions import db, socketio


class Fleet:
    """Helpers bound to one app: activate cars, connect them, make models."""

    def __init__(self, app, client, factory):
        self.app, self.client, self.factory = app, client, factory
        self.admin = factory.user("admin", password=None)
        self.headers = {"Authorization": f"Bearer {factory.token(self.admin)}"}

    def headers_for(self, role: str) -> dict:
        """Authorization headers for a new API-token-only user with ``role`` (no password
        hashing: these tests never sign in with one)."""
        return {"Authorization": f"Bearer {self.factory.token(self.factory.user(role, password=None))}"}

    def code(self, hostname: str = "car-01", fleet_id: int | None = None) -> str:
        """A fresh activation code (through the API, as an admin)."""
        resp = self.client.post("/api/fleet/activation-codes", json={"hostname": hostname, "fleet_id": fleet_id},
                                headers=self.headers)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["code"]

    def activate(self, hostname: str = "car-01", fleet_id: int | None = None) -> dict:
        """Activate a car; returns the activation answer (car_id, token, ...)."""
        resp = self.client.post("/api/car/activate", json={"code": self.code(hostname, fleet_id),
                                                           "hostname": hostname, "software_version": "0.1.0"})
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def connect(self, token: str):
        """A Socket.IO test client on ``/car`` with this token."""
        return socketio.test_client(self.app, namespace="/car", auth={"token": token})

    def watch(self, user: dict | None = None):
        """A Socket.IO test client on ``/fleet`` for a logged-in operator (what the cars page gets)."""
        flask_client = self.app.test_client()
        self.factory.login(flask_client, user or self.factory.user("operator"))
        return socketio.test_client(self.app, namespace="/fleet", flask_test_client=flask_client)

    def car(self, car_id: int) -> dict:
        resp = self.client.get(f"/api/fleet/cars/{car_id}", headers=self.headers)
        assert resp.status_code == 200
        return resp.get_json()

    def command(self, car_ids: list, command_type: str, params: dict | None = None, headers=None):
        return self.client.post("/api/fleet/commands", json={"car_ids": car_ids, "type": command_type,
                                                             "params": params or {}},
                                headers=headers or self.headers)

    def command_row(self, command_id: int) -> dict:
        return self.client.get(f"/api/fleet/commands/{command_id}", headers=self.headers).get_json()

    def model(self, content: bytes | None = None, status: str = "available", filename: str = "fast.tar.gz") -> dict:
        """A racer's model stored in the app's storage, with ``status`` (no scan)."""
        content = content if content is not None else os.urandom(300_000)
        owner = self.factory.user("racer", password=None)
        with self.app.app_context():
            key = f"models/{owner['id']}/{os.urandom(8).hex()}.tar.gz"
            get_storage().put(key, io.BytesIO(content))
            now = utcnow()
            row = RacerModel(owner_id=db.session.get(User, owner["id"]).id, filename=filename, storage_key=key,
                             status=status, model_format="deepracer", size=len(content),
                             sha256=hashlib.sha256(content).hexdigest(), md5=hashlib.md5(content).hexdigest(),
                             uploaded_at=now, expires_at=now + timedelta(days=30))
            db.session.add(row)
            db.session.commit()
            return {"id": row.id, "content": content, "sha256": row.sha256, "owner": owner}


@pytest.fixture
def fleet(app, client, factory) -> Fleet:
    """Fleet helpers for this test (an admin with an API token included)."""
    return Fleet(app, client, factory)


def received(sio_client, name: str, namespace: str) -> list:
    """The first argument of every ``name`` message the test client got since the last call."""
    return [m["args"][0] for m in sio_client.get_received(namespace) if m["name"] == name]
