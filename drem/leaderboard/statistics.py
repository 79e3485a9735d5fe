"""Event statistics for the public statistics page: one event, or every event.

Counts come from counted races only (``drem.events.models.COUNTED``: ready and discarded
races never count), the same as the leaderboards. A lap is valid by
``drem.events.rules`` (``Lap.is_valid`` under the event's resets limit).

Units: lap times integer ms; ``resets_per_lap`` a float; ``laps_per_hour`` counts laps
recorded in each clock hour (UTC, ISO-8601 hour start).
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from drem.auth.models import User
from drem.events.models import COUNTED, Event, Lap, Race, Track
from drem.events.rules import lap_is_valid
from drem.platform.extensions import db

FASTEST = 10


def event_statistics(event: Event | None = None) -> dict:
    """Statistics of ``event`` (None: over all events).

    ``{"scope": event id or "all", "events", "racers", "countries" ({code: racers}, most
    first; racers without a country under ""), "runs", "laps", "valid_laps", "resets",
    "resets_per_lap" (None without laps), "fastest_laps" ([{username, country_code, event,
    track, time_ms, recorded_at}], the 10 fastest valid laps), "laps_per_hour" ([{hour,
    laps}], in time order), "per_track" ([{event, track, laps, best_lap_ms}])}``."""
    q = (sa.select(Lap.time_ms, Lap.resets, Lap.invalidated, Lap.dnf, Lap.recorded_at, Race.id,
                   Race.racer_id, User.username, User.country_code, Event.id, Event.name,
                   Event.resets_allowed_per_lap, Track.name, Track.id)
         .join(Race, Race.id == Lap.race_id).join(User, User.id == Race.racer_id)
         .join(Event, Event.id == Race.event_id).join(Track, Track.id == Race.track_id)
         .where(Race.status.in_(COUNTED)))
    race_q = sa.select(Race.id, Race.racer_id, Race.event_id).where(Race.status.in_(COUNTED))
    if event is not None:
        q = q.where(Race.event_id == event.id)
        race_q = race_q.where(Race.event_id == event.id)
    runs = db.session.execute(race_q).all()
    racer_ids = {r.racer_id for r in runs}
    countries = Counter(cc or "" for (cc,) in db.session.execute(
        sa.select(User.country_code).where(User.id.in_(racer_ids)))) if racer_ids else Counter()
    laps = valid = resets = 0
    fastest: list[dict] = []
    hours: Counter[str] = Counter()
    tracks: dict[int, dict] = {}
    for (time_ms, lap_resets, invalidated, dnf, recorded_at, _race_id, _racer_id, username, cc,
         _event_id, event_name, allowed, track_name, track_id) in db.session.execute(q):
        laps += 1
        resets += lap_resets
        hours[recorded_at.replace(minute=0, second=0, microsecond=0).isoformat()] += 1
        per = tracks.setdefault(track_id, {"event": event_name, "track": track_name, "laps": 0,
                                           "best_lap_ms": None})
        per["laps"] += 1
        if lap_is_valid(invalidated, dnf, lap_resets, allowed):
            valid += 1
            fastest.append({"username": username, "country_code": cc, "event": event_name,
                            "track": track_name, "time_ms": time_ms, "recorded_at": recorded_at.isoformat()})
            if per["best_lap_ms"] is None or time_ms < per["best_lap_ms"]:
                per["best_lap_ms"] = time_ms
    fastest.sort(key=lambda x: (x["time_ms"], x["recorded_at"]))
    return {"scope": event.id if event is not None else "all",
            "events": len({r.event_id for r in runs}), "racers": len(racer_ids),
            "countries": dict(countries.most_common()), "runs": len(runs), "laps": laps,
            "valid_laps": valid, "resets": resets,
            "resets_per_lap": round(resets / laps, 3) if laps else None,
            "fastest_laps": fastest[:FASTEST],
            "laps_per_hour": [{"hour": h, "laps": n} for h, n in sorted(hours.items())],
            "per_track": list(tracks.values())}
