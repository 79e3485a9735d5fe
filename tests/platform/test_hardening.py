"""Issue 18, the outside review's web findings: each test sends the request the review sent
and checks the answer it should have got (same-origin Socket.IO, open redirect, body limits,
CSRF with a bogus bearer header, anti-framing headers, proxy host, landing links, CSV
formula cells, event import caps and staff accounts, the public race display)."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

import pytest

from drem.app import SECURITY_HEADERS, SMALL_BODY_BYTES, create_app
from drem.auth.views import safe_next
from tests.factories import csrf_from

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


# ------------------------------------------------------------------ Socket.IO origin

def test_socketio_handshake_refuses_another_origin(client, app):
    other = client.get(HANDSHAKE, headers={"Origin": "http://localhost:8080"})
    assert other.status_code == 400 and b"Not an accepted origin" in other.data
    evil = client.get(HANDSHAKE, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 400
    same = client.get(HANDSHAKE, headers={"Origin": "http://localhost"})
    assert same.status_code == 200 and same.data.startswith(b"0{")
    assert client.get(HANDSHAKE).status_code == 200  # no Origin: the car client, scripts


def test_socketio_handshake_accepts_public_url(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://drem.venue.example/")
    resp = client.get(HANDSHAKE, headers={"Origin": "https://drem.venue.example"})
    assert resp.status_code == 200
    assert client.get(HANDSHAKE, headers={"Origin": "https://drem.venue.example:8443"}).status_code == 400


# ------------------------------------------------------------------ open redirect

@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example", "/\\evil.example", "/\t/evil.example",
                                    "https://evil.example/", "/%0a/evil.example", " /evil", "javascript:alert(1)"])
def test_login_next_never_leaves_the_site(client, factory, target):
    user = factory.user()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    query = target if "%" in target else quote(target, safe="")  # "%09" as the review sent it
    resp = client.post(f"/login?next={query}", data={"csrf_token": token, "username": user["username"],
                                                      "password": user["password"]})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/", resp.headers["Location"]


def test_safe_next_keeps_paths_on_the_site():
    assert safe_next("/events/3?tab=races", "/") == "/events/3?tab=races"
    for bad in ("/\t/evil.example", "//evil.example", "/\\\\evil", "http://x", "", None, "/a\nb"):
        assert safe_next(bad, "/home") == "/home"


# ------------------------------------------------------------------ request size

def test_big_json_body_is_refused_before_parsing(client):
    body = b'{"code": "' + b"A" * (2 * SMALL_BODY_BYTES) + b'"}'
    resp = client.post("/api/car/activate", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    resp = client.post("/login", data=b"username=" + b"a" * (2 * SMALL_BODY_BYTES),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413


class _Counting(io.BytesIO):
    """A request body that counts what the server read of it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, n=-1):
        data = super().read(n)
        self.taken += len(data)
        return data

    def readline(self, n=-1):
        data = super().readline(n)
        self.taken += len(data)
        return data


def test_chunked_json_body_is_cut_off_at_the_limit(client):
    body = _Counting(b'{"code": "' + b"A" * (8 * SMALL_BODY_BYTES) + b'"}')
    resp = client.post("/api/car/activate", input_stream=body,
                       environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert resp.status_code == 413
    assert body.taken <= SMALL_BODY_BYTES + 64 * 1024, body.taken


def test_chunked_multipart_upload_is_cut_off_at_the_limit(client, app, factory, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_LIMIT_BYTES", 1024 * 1024)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2 * 1024 * 1024)
    boundary = "drem-boundary"
    body = _Counting((f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.tar.gz\"\r\n"
                      "Content-Type: application/gzip\r\n\r\n").encode() + b"\0" * (20 * 1024 * 1024)
                     + f"\r\n--{boundary}--\r\n".encode())
    resp = client.post("/api/models", input_stream=body, environ_overrides={"wsgi.input_terminated": True},
                       headers=factory.headers("racer") | {"Transfer-Encoding": "chunked",
                                                          "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413
    assert body.taken <= 3 * 1024 * 1024, body.taken


# ------------------------------------------------------------------ CSRF, headers

def test_bogus_bearer_header_does_not_skip_csrf_on_a_cookie_session(client, factory):
    user = factory.user()
    factory.login(client, user)
    resp = client.post("/account/tokens", data={"token-name": "sneaky"},
                       headers={"Authorization": "Bearer nonsense"})
    assert resp.status_code == 400 and b"CSRF" in resp.data
    resp = client.post("/api/me/password", json={"current_password": user["password"], "new_password": "x" * 12},
                       headers={"Authorization": "Bearer drem_forged"})
    assert resp.status_code == 400 and "CSRF" in resp.get_json()["error"]


def test_anti_framing_and_nosniff_headers(client):
    for path in ("/", "/login", "/api/me", "/nowhere"):
        resp = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)


# ------------------------------------------------------------------ proxy host

def test_forwarded_host_is_not_trusted_behind_a_proxy(tmp_path):
    proxied = create_app(overrides={"TESTING": True, "JOBS_AUTOSTART": False},
                         env={"DREM_ENV": "testing", "DREM_INSTANCE_PATH": str(tmp_path), "PROXY_HOPS": "1",
                              "SOCKETIO_ASYNC_MODE": "threading", "LOGIN_RATE_LIMIT": "10000 per minute"})

    @proxied.get("/_seen")
    def _seen():
        from flask import request, url_for
        return {"host": request.host, "scheme": request.scheme, "addr": request.remote_addr,
                "external": url_for("main.home", _external=True)}

    seen = proxied.test_client().get("/_seen", headers={
        "Host": "drem.local", "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "10.0.0.7",
        "X-Forwarded-Proto": "https"}).get_json()
    assert seen["host"] == "drem.local" and "evil" not in seen["external"]
    assert seen["addr"] == "10.0.0.7" and seen["scheme"] == "https"  # the proxy's other headers still count


# ------------------------------------------------------------------ landing links, CSV, import

@pytest.mark.parametrize("url", ["//evil.example", "/\t/evil.example", "/\\evil.example", "javascript:alert(1)",
                                 "https:evil.example", "http://", "/ spaced"])
def test_landing_links_refuse_other_sites_in_disguise(client, factory, url):
    headers = factory.headers("admin")
    event = factory.event()
    resp = client.patch(f"/api/events/{event['id']}", json={"landing_links": [{"title": "x", "url": url}]},
                        headers=headers)
    assert resp.status_code == 400 and "landing link" in resp.get_json()["error"]
    assert client.get(f"/api/events/{event['id']}", headers=headers).get_json()["landing_links"] == []


def test_landing_links_take_real_urls_and_paths(client, factory):
    headers = factory.headers("admin")
    event = factory.event()
    links = [{"title": "Rules", "url": "https://deepracer.example/rules"}, {"title": "Board", "url": "/events/1"}]
    resp = client.patch(f"/api/events/{event['id']}", json={"landing_links": links}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["landing_links"] == links


def test_csv_cells_never_start_a_formula():
    from drem.leaderboard.export import _num

    for hostile in ("=1+1", "+1", "-2+3", "@x", "\tx", "\rx"):
        assert _num(hostile) == "'" + hostile
    assert _num(-3) == "-3" and _num(-1.5) == "-1.500" and _num("Track 1") == "Track 1"


def test_event_import_refuses_staff_accounts_and_huge_documents(client, factory, app):
    admin_h = factory.headers("admin")
    operator = factory.user("operator", username="op_anna")
    doc = {"format": "drem-event", "version": 1,
           "event": {"name": "Imported", "date": "2026-11-22"},
           "tracks": [{"id": 1, "name": "T1", "layout": "reinvent_base"}],
           "racers": [{"username": operator["username"], "registered": True}],
           "races": [{"id": 1, "racer": operator["username"], "track_id": 1, "status": "submitted",
                      "time_limit_ms": 180000, "laps": [{"lap_number": 1, "time_ms": 9000}]}]}
    resp = client.post("/api/events/import", json=doc, headers=admin_h)
    assert resp.status_code == 400 and "operator account" in resp.get_json()["error"]
    from drem.events.models import Event, Lap
    from drem.platform.extensions import db

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Lap)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0
    many = dict(doc, racers=[{"username": f"r{i}"} for i in range(5001)], races=[])
    resp = client.post("/api/events/import", json=many, headers=admin_h)
    assert resp.status_code == 400 and "at most 5000" in resp.get_json()["error"]
    laps = dict(doc, racers=[{"username": "lapper"}],
                races=[dict(doc["races"][0], racer="lapper",
                            laps=[{"lap_number": n, "time_ms": 9000} for n in range(1, 1002)])])
    resp = client.post("/api/events/import", json=laps, headers=admin_h)
    assert resp.status_code == 400 and "at most 1000" in resp.get_json()["error"]
    huge = json.dumps(dict(doc, padding="x" * (17 * 1024 * 1024)))
    resp = client.post("/api/events/import", data=huge, headers=admin_h | {"Content-Type": "application/json"})
    assert resp.status_code == 413


def test_laps_csv_of_a_hostile_track_name(client, factory, app):
    from drem.leaderboard.export import laps_csv

    headers = factory.headers("admin")
    event = factory.event()
    track_id = event["tracks"][0]["id"]
    assert client.patch(f"/api/events/{event['id']}/tracks/{track_id}", json={"name": "=cmd|' /C calc'!A0"},
                        headers=headers).status_code == 200
    racer = factory.user("racer", password=None)
    from drem.auth.models import User
    from drem.events.models import Event, Lap, Race
    from drem.platform.extensions import db

    with app.app_context():
        race = Race(event_id=event["id"], track_id=track_id, racer_id=racer["id"], status="submitted",
                    time_limit_ms=180000)
        db.session.add(race)
        db.session.flush()
        db.session.add(Lap(race_id=race.id, lap_number=1, time_ms=9000, source="operator", source_id="t-1"))
        db.session.commit()
        text = laps_csv(db.session.get(Event, event["id"]))
        assert db.session.get(User, racer["id"]) is not None
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


def test_chunked_multipart_to_any_url_is_not_spooled(client):
    """The review's 300 MB multipart body to a form URL was spooled to disk before a 400."""
    boundary = "drem-boundary"
    body = _Counting((f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n"
                      "Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * (20 * 1024 * 1024)
                     + f"\r\n--{boundary}--\r\n".encode())
    resp = client.post("/login", input_stream=body, environ_overrides={"wsgi.input_terminated": True},
                       headers={"Transfer-Encoding": "chunked",
                                "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413
    assert body.taken <= SMALL_BODY_BYTES + 64 * 1024, body.taken
