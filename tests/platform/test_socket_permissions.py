"""Socket.IO handlers declare their permission like routes do: every handler is
declared, the declaration is enforced at every message, and an undeclared handler
stops the app from starting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask
from flask_socketio import SocketIO

from drem.auth.models import User
from drem.platform.extensions import db, socketio
from drem.platform.permissions import (
    PERMISSIONS,
    check_socket_handlers,
    socket_handlers,
    socket_public,
    socket_requires,
)

REPO = Path(__file__).resolve().parents[2]

EXPECTED = {
    ("/car", "connect"): "car token", ("/car", "disconnect"): "car token", ("/car", "heartbeat"): "car token",
    ("/car", "lap"): "car token", ("/car", "command_result"): "car token",
    ("/timer", "connect"): "timer token", ("/timer", "disconnect"): "timer token",
    ("/timer", "heartbeat"): "timer token", ("/timer", "crossing"): "timer token",
    ("/fleet", "connect"): "fleet.view", ("/models", "connect"): "models.upload",
    ("/timekeeper", "connect"): "races.view", ("/timekeeper", "watch"): "races.view",
    ("/leaderboard", "connect"): None, ("/leaderboard", "join"): None,
    ("/queue", "connect"): None, ("/queue", "watch"): None, ("/queue", "watch_console"): "races.view",
}


def test_every_socket_handler_of_the_app_declares_its_permission(app):
    check_socket_handlers(socketio)  # raises if one declares nothing
    declared = {(ns, event): handler.required_permission for ns, event, handler in socket_handlers(socketio)}
    assert declared == EXPECTED
    assert all(p is None or p in PERMISSIONS or p in ("car token", "timer token") for p in declared.values())


def test_check_names_every_undeclared_handler_before_and_after_init_app():
    sio = SocketIO()

    @sio.on("connect", namespace="/ok")
    @socket_public
    def fine(auth=None):
        return True

    @sio.on("ping", namespace="/ok")
    @socket_requires("fleet.view")
    def guarded(data):
        return data

    check_socket_handlers(sio)

    @sio.on("sneak", namespace="/ok")
    def sneak(data):
        return data

    with pytest.raises(RuntimeError, match=r"without a permission: sneak on /ok \(.*sneak\)$"):
        check_socket_handlers(sio)
    sio.init_app(Flask("throwaway"), async_mode="threading")

    @sio.on("late", namespace="/other")  # registered on the running server
    def late(data):
        return data

    with pytest.raises(RuntimeError) as info:
        check_socket_handlers(sio)
    assert "sneak on /ok" in str(info.value) and "late on /other" in str(info.value)
    assert "fine" not in str(info.value) and "guarded" not in str(info.value)


def test_unknown_permission_fails_at_declaration():
    with pytest.raises(KeyError):
        socket_requires("fleet.fly")


def test_an_undeclared_handler_makes_create_app_fail(tmp_path):
    script = textwrap.dedent("""
        import sys
        from drem.platform.extensions import socketio

        @socketio.on("sneak", namespace="/fleet")
        def sneak(data):
            return data

        from drem.app import create_app

        env = {"DREM_ENV": "testing", "SECRET_KEY": "x", "DREM_INSTANCE_PATH": sys.argv[1],
               "DATABASE_URL": "", "REDIS_URL": "", "STORAGE_URL": "", "SOCKETIO_ASYNC_MODE": "threading"}
        try:
            create_app(overrides={"TESTING": True, "JOBS_AUTOSTART": False}, env=env)
        except RuntimeError as exc:
            print(exc)
            sys.exit(3)
        print("started")
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "Socket.IO handlers without a permission: sneak on /fleet (sneak)"


def test_permission_is_checked_at_every_message_not_only_at_connect(app, factory):
    commentator = factory.user("commentator")
    web = app.test_client()
    factory.login(web, commentator)
    console = socketio.test_client(app, namespace="/timekeeper", flask_test_client=web)
    assert console.is_connected("/timekeeper")
    answer = console.emit("watch", {"track_id": 987654}, namespace="/timekeeper", callback=True)
    assert answer == {"ok": True, "race": None}
    assert console.emit("watch", {"track_id": "x"}, namespace="/timekeeper", callback=True) == \
        {"ok": False, "error": "track_id must be a whole number"}
    with app.app_context():
        db.session.get(User, commentator["id"]).is_disabled = True
        db.session.commit()
    answer = console.emit("watch", {"track_id": 987654}, namespace="/timekeeper", callback=True)
    assert answer == {"ok": False, "error": "forbidden"}
    console.disconnect(namespace="/timekeeper")


def test_refused_connections_keep_their_shapes(app, factory):
    anonymous = socketio.test_client(app, namespace="/timekeeper")
    assert not anonymous.is_connected("/timekeeper")
    racer_web = app.test_client()
    factory.login(racer_web, factory.user("racer"))
    assert not socketio.test_client(app, namespace="/fleet", flask_test_client=racer_web).is_connected("/fleet")
    models = socketio.test_client(app, namespace="/models", flask_test_client=racer_web)
    assert models.is_connected("/models")
    models.disconnect(namespace="/models")
    assert socketio.test_client(app, namespace="/leaderboard").is_connected("/leaderboard")
