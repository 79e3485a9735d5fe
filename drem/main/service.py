"""What the home page shows: recent events and the ones the visitor joined.

Read-only; drem.main sits above drem.events in the layers, so it reads events' tables
through drem.events.models (imported at module top).
"""

from __future__ import annotations

from drem.events.models import Event, EventRacer
from drem.platform.extensions import db


def recent_events(limit: int = 20) -> list[Event]:
    """The ``limit`` newest events by date (then newest created first)."""
    query = db.select(Event).order_by(Event.date.desc(), Event.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def joined_event_ids(user_id: int) -> set[int]:
    """Ids of the events the user is registered for as a racer."""
    return set(db.session.scalars(db.select(EventRacer.event_id).where(EventRacer.user_id == user_id)))
