"""Demo data for ``make demo``: staff accounts, a demo event on real tracks, racers.

Idempotent: running it again finds what exists and adds nothing twice.
"""

from __future__ import annotations

from datetime import date

from drem.auth.models import User
from drem.auth.service import create_user, find_user
from drem.events.models import Event
from drem.events.service import create_event, register_racer
from drem.platform.extensions import db

DEMO_EVENT = "drem Demo Cup"
DEMO_STAFF = (("operator", "demo.operator", "drem-operator"), ("registration", "demo.desk", "drem-desk"),
              ("commentator", "demo.commentator", "drem-commentator"))
DEMO_RACERS = (("Ada", "GB"), ("Kenji", "JP"), ("Lucia", "ES"), ("Mo", "EG"), ("Sofia", "SE"), ("Tariq", "DE"))


def _user(username: str, password: str | None, role: str, country: str | None = None) -> User:
    return find_user(username) or create_user(username, password, role=role, country_code=country)


def seed_demo(racer_password: str = "drem-racer") -> dict:
    """Create (once) the demo staff, the demo event with two tracks and six racers.

    Returns ``{"event_id": int, "staff": [(role, username, password)], "racers": [username]}``.
    Flushes; the caller commits.
    """
    for role, username, password in DEMO_STAFF:
        _user(username, password, role)
    admin = db.session.scalar(db.select(User).where(User.role == "admin").order_by(User.id).limit(1))
    event = db.session.scalar(db.select(Event).where(Event.name == DEMO_EVENT))
    if event is None:
        event = create_event(admin, {
            "name": DEMO_EVENT, "date": date.today().isoformat(), "country_code": "DE",
            "event_type": "private_track_race", "sponsor": "drem", "race_time_min": 3,
            "resets_allowed_per_lap": 3, "ranking_method": "best_lap", "averaging_window": 3,
            "max_runs_per_racer": 3,
            "landing_links": [{"title": "Upload your model", "url": "/models/upload"}],
            "tracks": [{"name": "re:Invent 2018", "layout": "reinvent_base", "direction": "ccw",
                        "leaderboard_title": DEMO_EVENT, "leaderboard_footer": "Fastest lap wins"},
                       {"name": "A to Z Speedway", "layout": "reInvent2019_wide", "direction": "ccw",
                        "leaderboard_title": DEMO_EVENT + " · A to Z"}],
        })
    racers = []
    for name, country in DEMO_RACERS:
        racer = _user(name, racer_password, "racer", country)
        register_racer(event, racer)
        racers.append(racer.username)
    db.session.flush()
    return {"event_id": event.id, "staff": list(DEMO_STAFF), "racers": racers}
