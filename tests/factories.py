"""Test data builders: users of every role, events with tracks, API tokens, logins."""

from __future__ import annotations

import itertools
import re
from datetime import date

from drem.auth.models import User
from drem.auth.service import create_api_token, create_user
from drem.events.service import create_event
from drem.platform.extensions import db

_seq = itertools.count(1)
PASSWORD = "correct-horse-1"


class Factory:
    """Creates rows inside their own app context and commits them; returns plain ids/values."""

    def __init__(self, app):
        self.app = app

    def user(self, role: str = "racer", username: str | None = None, password: str | None = PASSWORD,
             country_code: str | None = "DE") -> dict:
        with self.app.app_context():
            user = create_user(username or f"{role[:6]}{next(_seq)}", password, role=role,
                               country_code=country_code)
            db.session.commit()
            return {"id": user.id, "username": user.username, "password": password, "role": role}

    def token(self, user: dict) -> str:
        with self.app.app_context():
            _, plain = create_api_token(db.session.get(User, user["id"]), "test")
            db.session.commit()
            return plain

    def headers(self, role: str = "admin") -> dict:
        """Authorization headers for a new user with ``role``."""
        return {"Authorization": f"Bearer {self.token(self.user(role))}"}

    def event(self, tracks: int = 1, **fields) -> dict:
        with self.app.app_context():
            admin = db.session.scalar(db.select(User).where(User.role == "admin").limit(1))
            if admin is None:
                admin = create_user(f"admin{next(_seq)}", PASSWORD, role="admin")
            data = {"name": f"Event {next(_seq)}", "date": date(2026, 11, 22).isoformat(),
                    "tracks": [{"name": f"Track {i + 1}", "layout": "reinvent_base"} for i in range(tracks)]}
            event = create_event(admin, data | fields)
            db.session.commit()
            return event.to_dict()

    def login(self, client, user: dict) -> None:
        """Log ``client`` in through the real login form (CSRF token included)."""
        page = client.get("/login")
        token = _csrf_from(page.get_data(as_text=True))
        resp = client.post("/login", data={"csrf_token": token, "username": user["username"],
                                           "password": user["password"]})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


csrf_from = _csrf_from
