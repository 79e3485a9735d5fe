"""The racer's race-queue card on the event's landing page (/e/<id>): what a visitor, an
unregistered racer and a queued racer see, and the join / check-in / leave forms with
their refusals (CSRF, someone else's place or model). The console carries the panel."""

from __future__ import annotations

import re

from tests.factories import csrf_from
from tests.race_queue.conftest import add_model


def _racer_web(app, factory, venue):
    """A logged-in browser of a new racer registered for the venue's event."""
    from drem.events.models import EventRacer
    from drem.platform.extensions import db

    racer = factory.user("racer")
    with app.app_context():
        db.session.add(EventRacer(event_id=venue.event["id"], user_id=racer["id"], colour="red"))
        db.session.commit()
    web = app.test_client()
    factory.login(web, racer)
    return web, racer


def _card(html: str) -> str:
    match = re.search(r'<section class="card queue-card".*?</section>', html, re.S)
    assert match, "no queue card"
    return match.group(0)


def test_what_visitors_see(app, client, factory, venue):
    card = _card(client.get(f"/e/{venue.event['id']}").get_data(as_text=True))
    assert "Sign in to join the race queue" in card and 'name="track_id"' not in card
    stranger = factory.user("racer")
    web = app.test_client()
    factory.login(web, stranger)
    card = _card(web.get(f"/e/{venue.event['id']}?lang=de").get_data(as_text=True))
    assert "noch nicht angemeldet" in card  # German: not registered for this event


def test_a_racer_joins_and_checks_in_from_the_landing_page(app, factory, venue):
    web, racer = _racer_web(app, factory, venue)
    model = add_model(app, racer["id"], name="mine.tar.gz")
    add_model(app, venue.racers[0]["id"], name="not-mine.tar.gz")
    landing = f"/e/{venue.event['id']}"
    html = web.get(landing).get_data(as_text=True)
    card = _card(html)
    assert "Join the queue" in card and "race_queue_phone.js" in html
    token = csrf_from(html)
    resp = web.post(f"{landing}/queue/join", data={"csrf_token": token, "track_id": venue.track})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"{landing}#queue")
    card = _card(web.get(f"{landing}/queue/card").get_data(as_text=True))
    assert "Place 1 in the queue" in card and "check in when you are at the track" in card
    assert "mine.tar.gz" in card and "not-mine.tar.gz" not in card  # only one's own available models
    assert "Your race in about 0 min" in card
    entry = int(re.search(r'name="entry_id" value="(\d+)"', card).group(1))
    web.post(f"{landing}/queue/check-in", data={"csrf_token": token, "entry_id": entry, "model_id": model})
    card = _card(web.get(f"{landing}/queue/card?lang=fr").get_data(as_text=True))
    assert "Arrivée signalée" in card and "Changer de modèle" in card


def test_card_forms_refuse_forgery_and_other_racers_places(app, client, factory, venue):
    from drem.platform.extensions import db
    from drem.race_queue.models import QueueEntry

    web, _racer = _racer_web(app, factory, venue)
    landing = f"/e/{venue.event['id']}"
    token = csrf_from(web.get(landing).get_data(as_text=True))
    assert web.post(f"{landing}/queue/join", data={"track_id": venue.track}).status_code == 400  # no CSRF token
    other = client.post("/api/me/queue", json={"track_id": venue.track},
                        headers={"Authorization": f"Bearer {factory.token(venue.racers[0])}"}).get_json()["entry_id"]
    resp = web.post(f"{landing}/queue/check-in", data={"csrf_token": token, "entry_id": other},
                    follow_redirects=True)
    assert "that is not your place in the queue" in resp.get_data(as_text=True)
    resp = web.post(f"{landing}/queue/leave", data={"csrf_token": token, "entry_id": other}, follow_redirects=True)
    assert "that is not your place in the queue" in resp.get_data(as_text=True)
    resp = web.post(f"{landing}/queue/join", data={"csrf_token": token, "track_id": 987654}, follow_redirects=True)
    assert "no such track at this event" in resp.get_data(as_text=True)
    with app.app_context():
        entry = db.session.get(QueueEntry, other)
        assert (entry.state, entry.position) == ("waiting", 1)  # untouched
    # the public cannot post at all
    assert client.post(f"{landing}/queue/join", data={"track_id": venue.track}).status_code in (302, 401)


def test_the_console_carries_the_queue_panel(app, factory, venue):
    operator = factory.user("operator")
    web = app.test_client()
    factory.login(web, operator)
    html = web.get(f"/timekeeper/tracks/{venue.track}").get_data(as_text=True)
    assert 'id="rq-panel"' in html and "race_queue.js" in html and 'id="rq-call-next"' in html
    board = web.get(f"/events/{venue.event['id']}/leaderboard?track={venue.track}").get_data(as_text=True)
    assert 'id="lb-next"' in board and "next-up.js" in board
    overlay = web.get(f"/events/{venue.event['id']}/overlay").get_data(as_text=True)
    assert 'id="ov-next"' in overlay
