"""Enrolment pages and API through the Flask test client: the desk in one step, the slip's
QR sign-in link, CSV preview and import, the walk-up API, the country picker, and every
refusal (racers may not enrol others)."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest

from drem.auth.models import SignInCode, User
from drem.events.models import EventRacer
from drem.platform.extensions import db
from tests.enrolment.conftest import count, enrolled_names
from tests.factories import PASSWORD, csrf_from


def _logged_in(app, factory, role: str) -> tuple:
    client = app.test_client()
    user = factory.user(role)
    factory.login(client, user)
    return client, user


def _post(client, url: str, data: dict, page: str | None = None, **kwargs):
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token} | data, **kwargs)


def _flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash error"[^>]*>([^<]*)', html)


# ------------------------------------------------------------------------ the desk

def test_desk_offers_open_events_with_today_preselected(app, factory):
    later = factory.event(name="Later Cup", date="2099-01-01")
    today = factory.event(name="Today Cup", date=date.today().isoformat())
    closed = factory.event(name="Closed Cup", enrolment_open=False)
    client, _ = _logged_in(app, factory, "registration")
    html = client.get("/desk").get_data(as_text=True)
    assert f'<option selected value="{today["id"]}">Today Cup' in html
    assert f'value="{later["id"]}">Later Cup' in html and "Closed Cup" not in html
    assert str(closed["id"]) not in re.findall(r'<option[^>]*value="(\d+)"', html)
    assert '<option value="DE">🇩🇪 Germany</option>' in html
    assert f'/events/{today["id"]}/enrol/csv' in html


def test_desk_creates_enrols_and_prints_a_slip_with_a_qr_sign_in_link(app, factory):
    event = factory.event(name="Venue Cup")
    client, desk = _logged_in(app, factory, "registration")
    app.config["PUBLIC_URL"] = "https://race.example"
    try:
        resp = _post(client, "/desk", {"username": "walk.in", "country_code": "BR", "email": "",
                                       "event_id": str(event["id"])})
    finally:
        app.config["PUBLIC_URL"] = ""
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, _flashes(html)
    code = re.search(r'id="sign-in-code">([A-Z0-9]{4}-[A-Z0-9]{4})<', html).group(1)
    assert "<svg" in html and 'class="qr"' in html and "<?xml" not in html
    assert "You are enrolled in <strong>Venue Cup</strong>" in html
    assert "https://race.example/login" in html
    with app.app_context():
        assert enrolled_names(event["id"]) == ["walk.in"]
        assert db.session.scalar(db.select(User.country_code).where(User.username == "walk.in")) == "BR"
    # the QR code's link fills in the code; only "Sign in" (a POST) uses it, once
    racer = app.test_client()
    page = racer.get(f"/login?code={code}").get_data(as_text=True)
    assert f'value="{code}"' in page and 'id="code-given"' in page
    with app.app_context():
        assert db.session.scalar(db.select(SignInCode.used_at)) is None
    assert _post(racer, "/login/code", {"code-code": code}, page="/login").headers["Location"].endswith("/account")
    again = _post(app.test_client(), "/login/code", {"code-code": code}, page="/login")
    assert again.headers["Location"].endswith("/login")


def test_qr_code_encodes_the_sign_in_link(app):
    from drem.enrolment.views import sign_in_url

    with app.test_request_context("/desk", base_url="http://10.0.0.5:8000/"):
        assert sign_in_url("ABCD-EFGH") == "http://10.0.0.5:8000/login?code=ABCD-EFGH"
        app.config["PUBLIC_URL"] = "https://race.example/"
        try:
            assert sign_in_url("ABCD-EFGH") == "https://race.example/login?code=ABCD-EFGH"
        finally:
            app.config["PUBLIC_URL"] = ""


@pytest.mark.parametrize(("country", "event_id", "message"), [
    ("", None, "choose a country"), ("QQ", None, "unknown country"), ("DE", "first", "event_id must be a whole number")])
def test_desk_refuses_bad_input(app, factory, country, event_id, message):
    event = factory.event()
    client, _ = _logged_in(app, factory, "registration")
    resp = _post(client, "/desk", {"username": "nocountry", "country_code": country,
                                   "event_id": event_id or str(event["id"])})
    assert resp.status_code == 200 and any(message in f for f in _flashes(resp.get_data(as_text=True)))
    with app.app_context():
        assert count(EventRacer) == 0 and db.session.scalar(db.select(User).where(User.username == "nocountry")) is None


def test_desk_account_only_and_existing_racer_with_password(app, factory):
    event = factory.event()
    factory.user("racer", username="Secured", country_code="DE")  # has a password
    client, _ = _logged_in(app, factory, "operator")
    resp = _post(client, "/desk", {"username": "solo", "country_code": "IT", "event_id": ""})
    assert resp.status_code == 200 and 'id="sign-in-code"' in resp.get_data(as_text=True)
    resp = _post(client, "/desk", {"username": "secured", "country_code": "DE", "event_id": str(event["id"])})
    html = resp.get_data(as_text=True)
    assert "Secured has chosen a password: sign in with it" in html and "sign-in-code" not in html
    with app.app_context():
        assert enrolled_names(event["id"]) == ["Secured"] and count(SignInCode) == 1


def test_desk_and_csv_refuse_racers_and_visitors(app, factory):
    event = factory.event()
    racer, _ = _logged_in(app, factory, "racer")
    commentator, _ = _logged_in(app, factory, "commentator")
    for url in ("/desk", f"/events/{event['id']}/enrol/csv"):
        assert racer.get(url).status_code == 403
        assert app.test_client().get(url).status_code == 302
    assert commentator.get(f"/events/{event['id']}/enrol/csv").status_code == 403
    token = csrf_from(racer.get("/account").get_data(as_text=True))
    resp = racer.post("/desk", data={"csrf_token": token, "username": "sneaky", "country_code": "DE",
                                     "event_id": str(event["id"])})
    assert resp.status_code == 403
    with app.app_context():
        assert count(EventRacer) == 0


# ------------------------------------------------------------------------ CSV

def _upload(client, event_id: int, text: str | bytes):
    url = f"/events/{event_id}/enrol/csv"
    data = text.encode() if isinstance(text, str) else text
    return _post(client, url, {"file": (io.BytesIO(data), "racers.csv")}, content_type="multipart/form-data")


def test_csv_preview_then_import_prints_all_slips(app, factory):
    event = factory.event()
    client, _ = _logged_in(app, factory, "registration")
    resp = _upload(client, event["id"], "name,country,email\nAnn,Germany,\nBo,se,bo@example.org\n")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.count("new racer") == 2 and 'id="csv-import"' in html
    with app.app_context():
        assert count(EventRacer) == 0  # the preview writes nothing
    token = csrf_from(html)
    data = re.search(r'name="import-csv" type="hidden" value="([^"]*)"', html).group(1)
    resp = client.post(f"/events/{event['id']}/enrol/csv", data={"csrf_token": token, "import-csv": data.replace("&#10;", "\n")})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.count('class="card slip"') == 2 and html.count("<svg") == 2
    assert len(set(re.findall(r"[A-Z0-9]{4}-[A-Z0-9]{4}", html))) == 2
    with app.app_context():
        assert enrolled_names(event["id"]) == ["Ann", "Bo"]


def test_csv_errors_per_row_and_no_import_button(app, factory):
    event = factory.event()
    client, _ = _logged_in(app, factory, "operator")
    resp = _upload(client, event["id"], "name,country\nAnn,DE\nAnn,FR\nBen,Mordor\n")
    html = resp.get_data(as_text=True)
    assert "2 with errors" in html and "already on line 2" in html and "unknown country &#39;Mordor&#39;" in html
    assert 'id="csv-import"' not in html


def test_csv_import_of_a_bad_file_writes_nothing(app, factory):
    event = factory.event()
    client, _ = _logged_in(app, factory, "registration")
    token = csrf_from(client.get(f"/events/{event['id']}/enrol/csv").get_data(as_text=True))
    resp = client.post(f"/events/{event['id']}/enrol/csv",
                       data={"csrf_token": token, "import-csv": "name,country\nAnn,DE\nBen,XX\n"})
    assert resp.status_code == 400 and "nothing was imported" in resp.get_data(as_text=True)
    with app.app_context():
        assert count(EventRacer) == 0 and db.session.scalar(db.select(User).where(User.username == "Ann")) is None


def test_csv_import_failing_midway_rolls_everything_back(app, factory, monkeypatch):
    from drem.enrolment import csv_import
    from drem.platform.errors import Conflict

    event = factory.event()
    client, _ = _logged_in(app, factory, "registration")
    real, calls = csv_import.enrol_by_name, []

    def third_fails(actor, ev, name, country, email=None):
        calls.append(name)
        if len(calls) == 3:
            raise Conflict(f"the name {name!r} was taken a moment ago", "username")
        return real(actor, ev, name, country, email)

    monkeypatch.setattr(csv_import, "enrol_by_name", third_fails)
    token = csrf_from(client.get(f"/events/{event['id']}/enrol/csv").get_data(as_text=True))
    resp = client.post(f"/events/{event['id']}/enrol/csv",
                       data={"csrf_token": token, "import-csv": "name,country\nAnn,DE\nBo,DE\nCy,DE\nDi,DE\n"})
    assert resp.status_code == 409 and "was taken a moment ago" in resp.get_data(as_text=True)
    assert calls == ["Ann", "Bo", "Cy"]
    with app.app_context():  # Ann and Bo were flushed, then rolled back with the rest
        assert count(EventRacer) == 0
        assert not set(db.session.scalars(db.select(User.username))) & {"Ann", "Bo", "Cy", "Di"}


def test_csv_too_large_file(app, factory):
    event = factory.event()
    client, _ = _logged_in(app, factory, "registration")
    resp = _upload(client, event["id"], b"name,country\n" + b"Racer,DE\n" * 8000)
    assert resp.status_code == 400 and "larger than 64 KiB" in resp.get_data(as_text=True)


# ------------------------------------------------------------------------ API

def test_enrol_api_roles_and_answers(app, client, factory):
    event = factory.event()
    desk_h = factory.headers("registration")
    url = f"/api/events/{event['id']}/enrol"
    resp = client.post(url, json={"username": "walkup1", "country_code": "nl"}, headers=desk_h)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["created"] and body["racer"]["country_code"] == "NL" and body["registration"]["colour"] == "blue"
    resp = client.post(url, json={"username": "WALKUP1", "country_code": "NL"}, headers=factory.headers("operator"))
    assert resp.status_code == 200 and resp.get_json()["already_enrolled"]
    assert client.post(url, json={"username": "x2", "country_code": "XX"}, headers=desk_h).get_json() == {
        "error": "unknown country 'XX': use an ISO 3166-1 code such as DE", "field": "country_code"}
    for role in ("racer", "commentator"):
        resp = client.post(url, json={"username": "sneaky", "country_code": "DE"}, headers=factory.headers(role))
        assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert client.post(url, json={"username": "sneaky", "country_code": "DE"}).status_code == 401
    with app.app_context():
        assert enrolled_names(event["id"]) == ["walkup1"]


def test_events_racers_api_lets_desk_staff_enrol_and_refuses_racers(app, client, factory):
    event = factory.event()
    racer, other = factory.user("racer"), factory.user("racer")
    url = f"/api/events/{event['id']}/racers"
    assert client.post(url, json={"user_id": racer["id"]}, headers=factory.headers("registration")).status_code == 201
    resp = client.post(url, json={"user_id": other["id"]}, headers={"Authorization": f"Bearer {factory.token(racer)}"})
    assert resp.status_code == 403
    closed = factory.event(enrolment_open=False)
    resp = client.post(f"/api/events/{closed['id']}/racers", json={"user_id": other["id"]},
                       headers=factory.headers("admin"))
    assert resp.status_code == 409 and "closed" in resp.get_json()["error"]


def test_closing_enrolment_on_the_event_page(app, factory):
    event = factory.event(name="Closing Cup")
    operator, _ = _logged_in(app, factory, "operator")
    desk, _ = _logged_in(app, factory, "registration")
    page = f"/events/{event['id']}"
    assert _post(desk, f"/events/{event['id']}/enrolment", {"open": "0"}, page=page).status_code == 403
    assert "Close enrolment" in operator.get(page).get_data(as_text=True)
    assert _post(operator, f"/events/{event['id']}/enrolment", {"open": "0"}, page=page).status_code == 302
    racer, _ = _logged_in(app, factory, "racer")
    home = racer.get("/").get_data(as_text=True)
    assert "enrolment closed" in home
    resp = _post(racer, f"/events/{event['id']}/join", {}, page="/")
    assert resp.status_code == 302
    assert "enrolment for Closing Cup is closed" in racer.get("/").get_data(as_text=True)
    with app.app_context():
        assert count(EventRacer) == 0
    assert _post(operator, f"/events/{event['id']}/enrolment", {"open": "1"}, page=page).status_code == 302
    with app.app_context():
        from drem.platform.audit import AuditEntry
        changes = [e.details["changes"] for e in db.session.scalars(db.select(AuditEntry).where(
            AuditEntry.action == "event.update"))]
        assert changes == [{"enrolment_open": [True, False]}, {"enrolment_open": [False, True]}]


# ------------------------------------------------------------------------ countries

def test_signup_requires_a_country_from_the_list(app, factory):
    client = app.test_client()
    page = client.get("/signup").get_data(as_text=True)
    assert '<select id="country_code" name="country_code" required>' in page
    for country, message in (("", "choose a country"), ("ZZ", "unknown country")):
        resp = _post(client, "/signup", {"username": "newbie", "password": PASSWORD, "country_code": country})
        assert any(message in f for f in _flashes(resp.get_data(as_text=True)))
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.username == "newbie")) is None
    assert _post(client, "/signup", {"username": "newbie", "password": PASSWORD, "country_code": "KE"}).status_code == 302


def test_account_page_edits_the_country(app, factory):
    client = app.test_client()
    user = factory.user("racer", country_code=None)
    factory.login(client, user)
    assert 'id="country-form"' in client.get("/account").get_data(as_text=True)  # no country: still works
    resp = _post(client, "/account/country", {"country-country_code": "ZZ"}, page="/account")
    assert resp.status_code == 400 and "unknown country" in resp.get_data(as_text=True)
    resp = _post(client, "/account/country", {"country-country_code": "AR"}, page="/account")
    assert resp.status_code == 302
    assert "🇦🇷 Argentina (AR)" in client.get("/account").get_data(as_text=True)


def test_console_has_the_walk_up_form(app, factory):
    event = factory.event()
    operator, _ = _logged_in(app, factory, "operator")
    html = operator.get(f"/timekeeper/tracks/{event['tracks'][0]['id']}").get_data(as_text=True)
    assert 'id="walkup"' in html and f'data-event-id="{event["id"]}"' in html and "walkup.js" in html
    assert 'data-slip-url="/desk/racers/0/code"' in html
