"""Event operations: events with their race config, tracks, racer registration.

Every function validates its input (raising ServiceError with the field name),
flushes, and leaves the commit to the caller. Privileged changes are audited.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app

from drem.auth.models import User
from drem.events.models import (
    DIRECTIONS,
    EVENT_TYPES,
    RANKING_METHODS,
    Event,
    EventRacer,
    Race,
    Track,
)
from drem.platform.audit import record_audit
from drem.platform.errors import Conflict, NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import flag, text, whole_number

# Tail-light colours handed to racers in turn (white is reserved for "stopped").
RACER_COLOURS = ("blue", "red", "green", "yellow", "purple", "orange", "pink")
UNLIMITED = ("", None, "unlimited")


def track_layouts() -> list[str]:
    """Names of the track files in ``TRACKS_DIR`` (without ``.npy``), plus ``"other"``."""
    folder = Path(current_app.config["TRACKS_DIR"])
    return sorted(p.stem for p in folder.glob("*.npy")) + ["other"]


def _ranged(data: dict, name: str, lo: int, hi: int, allow_unlimited: bool = False) -> int | None:
    if allow_unlimited and data.get(name) in UNLIMITED:
        return None
    return whole_number(data, name, lo, hi)


def _link_url_ok(url: str) -> bool:
    """An absolute ``http(s)://host…`` URL, or a path on this site: one leading ``/`` (not
    ``//host``, which browsers read as another site), no backslash, control character or
    space (browsers drop or rewrite those, e.g. ``/\t/evil.example`` is ``//evil.example``)."""
    if "\\" in url or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc) and url.lower().startswith(("http://", "https://"))
    return url.startswith("/") and not url.startswith("//") and not parts.scheme and not parts.netloc


def _links(raw) -> list[dict]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):  # one "title | url" per line, as typed in the form
        raw = [dict(zip(("title", "url"), (p.strip() for p in line.split("|", 1)), strict=False))
               for line in raw.splitlines() if line.strip()]
    if not isinstance(raw, list) or len(raw) > 20:
        raise ServiceError("landing links must be a list of at most 20 {title, url}", "landing_links")
    links = []
    for item in raw:
        title, url = str(item.get("title") or "").strip(), str(item.get("url") or "").strip()
        if not title or not _link_url_ok(url):
            raise ServiceError("each landing link needs a title and an http(s)://host/… URL or a /path on "
                               "this site (not //host)", "landing_links")
        links.append({"title": title[:80], "url": url[:500]})
    return links


def parse_event_fields(data: dict, current: Event | None = None) -> dict:
    """Validate raw event fields (from a form or JSON) into column values.

    Missing keys keep ``current``'s values (for partial updates). Ranges, from the
    race-config spec: race time 1-10 min, resets per lap 0-10 or unlimited,
    averaging window 3-7, max runs 1-5 or unlimited, lap target 1-100 (required
    for lap-count races); ``enrolment_open`` a flag (default true). Raises ServiceError
    naming the field.
    """
    merged = dict(current.to_dict() | current.race_config()) if current else {}
    merged.update({k: v for k, v in data.items() if k != "tracks"})
    out = {"name": text(merged, "name", 0, 100, required=True)}
    raw_date = merged.get("date")
    try:
        out["date"] = raw_date if isinstance(raw_date, date) else date.fromisoformat(str(raw_date))
    except ValueError:
        raise ServiceError("date must be YYYY-MM-DD", "date") from None
    country = (text(merged, "country_code", 0, 10) or "").upper() or None
    if country and not (len(country) == 2 and country.isalpha()):
        raise ServiceError("country code must be two letters", "country_code")
    out["country_code"] = country
    out["event_type"] = merged.get("event_type") or "private_track_race"
    if out["event_type"] not in EVENT_TYPES:
        raise ServiceError(f"event type must be one of {', '.join(EVENT_TYPES)}", "event_type")
    out["sponsor"] = text(merged, "sponsor", 0, 100)
    out["race_time_min"] = _ranged(merged | {"race_time_min": merged.get("race_time_min", 4)},
                                   "race_time_min", 1, 10)
    out["resets_allowed_per_lap"] = _ranged(merged, "resets_allowed_per_lap", 0, 10, allow_unlimited=True)
    out["ranking_method"] = merged.get("ranking_method") or "best_lap"
    if out["ranking_method"] not in RANKING_METHODS:
        raise ServiceError(f"ranking method must be one of {', '.join(RANKING_METHODS)}", "ranking_method")
    out["averaging_window"] = _ranged(merged | {"averaging_window": merged.get("averaging_window") or 3},
                                      "averaging_window", 3, 7)
    out["max_runs_per_racer"] = _ranged(merged, "max_runs_per_racer", 1, 5, allow_unlimited=True)
    out["lap_target"] = _ranged(merged, "lap_target", 1, 100, allow_unlimited=True)
    if out["ranking_method"] == "total_time" and out["lap_target"] is None:
        raise ServiceError("a lap-count race needs a lap target", "lap_target")
    out["landing_links"] = _links(merged.get("landing_links"))
    out["enrolment_open"] = flag(merged, "enrolment_open", default=True)
    return out


def parse_track_fields(data: dict, current: Track | None = None) -> dict:
    """Validate raw track fields: name, layout (a track file or "other"), direction
    (ccw/cw), leaderboard title and footer. Raises ServiceError naming the field."""
    merged = (current.to_dict() if current else {}) | data
    out = {"name": text(merged, "name", 0, 60, required=True)}
    out["layout"] = merged.get("layout") or "other"
    if out["layout"] not in track_layouts():
        raise ServiceError(f"unknown track layout {out['layout']!r}", "layout")
    out["direction"] = (merged.get("direction") or "ccw").lower()
    if out["direction"] not in DIRECTIONS:
        raise ServiceError("direction must be ccw or cw", "direction")
    out["leaderboard_title"] = text(merged, "leaderboard_title", 0, 100)
    out["leaderboard_footer"] = text(merged, "leaderboard_footer", 0, 200)
    return out


def get_event(event_id: int) -> Event:
    """The event with this id; NotFound otherwise."""
    event = db.session.get(Event, event_id)
    if event is None:
        raise NotFound("no such event")
    return event


def get_track(track_id: int, event: Event | None = None) -> Track:
    """The track with this id (belonging to ``event`` when given); NotFound otherwise."""
    track = db.session.get(Track, track_id)
    if track is None or (event is not None and track.event_id != event.id):
        raise NotFound("no such track")
    return track


def get_race(race_id: int) -> Race:
    """The race (run) with this id; NotFound otherwise."""
    race = db.session.get(Race, race_id)
    if race is None:
        raise NotFound("no such race")
    return race


def list_events() -> list[Event]:
    """All events, newest date first."""
    return list(db.session.scalars(db.select(Event).order_by(Event.date.desc(), Event.id.desc())))


def create_event(actor: User, data: dict) -> Event:
    """Create an event from raw fields; ``data["tracks"]`` may list tracks to add.
    An event always has at least one track (a default one is added). Audited."""
    event = Event(**parse_event_fields(data))
    db.session.add(event)
    db.session.flush()
    for fields in data.get("tracks") or [{"name": "Track 1"}]:
        add_track(actor, event, fields, audit=False)
    record_audit(actor, "event.create", "event", event.id, name=event.name)
    return event


def update_event(actor: User, event: Event, data: dict) -> Event:
    """Change an event's fields and race config (partial update); audited with the changes."""
    fields = parse_event_fields(data, current=event)
    changes = {k: [_plain(getattr(event, k)), _plain(v)] for k, v in fields.items() if getattr(event, k) != v}
    for key, value in fields.items():
        setattr(event, key, value)
    if changes:
        record_audit(actor, "event.update", "event", event.id, changes=changes)
    db.session.flush()
    return event


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def delete_event(actor: User, event: Event) -> None:
    """Delete an event with its tracks and registrations; audited."""
    record_audit(actor, "event.delete", "event", event.id, name=event.name)
    db.session.delete(event)
    db.session.flush()


def add_track(actor: User, event: Event, data: dict, audit: bool = True) -> Track:
    """Add a track to ``event``; Conflict when the name is already used there."""
    fields = parse_track_fields(data)
    if any(t.name.lower() == fields["name"].lower() for t in event.tracks):
        raise Conflict(f"this event already has a track called {fields['name']!r}", "name")
    track = Track(event=event, position=len(event.tracks), **fields)
    db.session.add(track)
    db.session.flush()
    if audit:
        record_audit(actor, "track.create", "track", track.id, event_id=event.id, name=track.name)
    return track


def update_track(actor: User, track: Track, data: dict) -> Track:
    """Change a track's fields; audited."""
    fields = parse_track_fields(data, current=track)
    if any(t.id != track.id and t.name.lower() == fields["name"].lower() for t in track.event.tracks):
        raise Conflict(f"this event already has a track called {fields['name']!r}", "name")
    for key, value in fields.items():
        setattr(track, key, value)
    record_audit(actor, "track.update", "track", track.id, **fields)
    db.session.flush()
    return track


def delete_track(actor: User, track: Track) -> None:
    """Delete a track (not the last one of its event); audited."""
    if len(track.event.tracks) <= 1:
        raise Conflict("an event needs at least one track")
    record_audit(actor, "track.delete", "track", track.id, event_id=track.event_id, name=track.name)
    db.session.delete(track)
    db.session.flush()


def open_events() -> list[Event]:
    """Events whose enrolment is open, by date (oldest first, then oldest created)."""
    return list(db.session.scalars(db.select(Event).where(Event.enrolment_open.is_(True))
                                   .order_by(Event.date, Event.id)))


def default_event(events: list[Event], today: date | None = None) -> Event | None:
    """The event a desk form preselects among ``events``: today's (the newest created when
    several), else the next one to come, else the latest past one; None for no events."""
    today = today or date.today()
    todays = [e for e in events if e.date == today]
    if todays:
        return max(todays, key=lambda e: e.id)
    coming = [e for e in events if e.date > today]
    if coming:
        return min(coming, key=lambda e: (e.date, e.id))
    return max(events, key=lambda e: (e.date, e.id)) if events else None


def register_racer(event: Event, racer: User, actor: User | None = None) -> EventRacer:
    """Enrol ``racer`` in ``event``: the one function behind the racer's "Register", the
    event page, the API, the desk, the CSV import and the walk-up form.

    Idempotent: an enrolled racer gets their registration back (nothing written). A new
    registration gets the next tail-light colour and an audit entry ``event.add_racer``
    (``actor`` is the racer themselves when None). Raises ServiceError (field ``user_id``)
    for a non-racer account and Conflict when the event's enrolment is closed.
    """
    if racer.role != "racer":
        raise ServiceError("only racer accounts can be registered for an event", "user_id")
    existing = db.session.scalar(db.select(EventRacer).filter_by(event_id=event.id, user_id=racer.id))
    if existing:
        return existing
    if not event.enrolment_open:
        raise Conflict(f"enrolment for {event.name} is closed", "event_id")
    colour = RACER_COLOURS[len(event.registrations) % len(RACER_COLOURS)]
    reg = EventRacer(event=event, user=racer, colour=colour)
    db.session.add(reg)
    db.session.flush()
    record_audit(actor or racer, "event.add_racer", "event", event.id, racer=racer.username, user_id=racer.id)
    return reg


def unregister_racer(actor: User, event: Event, racer: User) -> None:
    """Remove ``racer`` from ``event``; NotFound if not registered. Audited."""
    reg = db.session.scalar(db.select(EventRacer).filter_by(event_id=event.id, user_id=racer.id))
    if reg is None:
        raise NotFound("that racer is not registered for this event")
    record_audit(actor, "event.remove_racer", "event", event.id, racer=racer.username)
    db.session.delete(reg)
    db.session.flush()
