"""Results: CSV exports (per lap, per racer) and a JSON export/import of a whole event.

The JSON document (``"format": "drem-event"``, ``"version": 1``) holds the event with
its race config and landing links, its tracks, its racers (by username, with country
and tail-light colour) and every race with its laps, so that :func:`import_event`
re-creates the event in another (e.g. empty) database with the same leaderboard.
Times are integer milliseconds, points in time ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import sqlalchemy as sa

from drem.auth.models import User
from drem.auth.service import create_user, find_user
from drem.events import service as events_service
from drem.events.models import (
    COUNTED,
    ENDED,
    LAP_SOURCES,
    PAUSED,
    READY,
    RUNNING,
    Event,
    EventRacer,
    Lap,
    Race,
    RaceStatus,
)
from drem.leaderboard import service
from drem.platform.audit import record_audit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import whole_number

FORMAT, FORMAT_VERSION = "drem-event", 1
STATUSES = tuple(RaceStatus)

LAP_COLUMNS = ("event_id", "track_id", "track", "race_id", "race_status", "counted", "racer_id",
               "username", "country_code", "raced_by_proxy", "lap_number", "time_ms", "time_s",
               "resets", "invalidated", "dnf", "valid", "source", "recorded_at", "penalty_ms", "penalty_reason",
               "race_penalty_ms", "race_penalty_reason", "race_disqualified", "race_disqualified_reason")
RACER_COLUMNS = ("leaderboard", "track_id", "ranking_method", "rank", "racer_id", "username",
                 "country_code", "ranking_value_ms", "gap_to_leader_ms", "gap_to_ahead_ms",
                 "best_lap_ms", "best_average_ms", "best_average_race_id", "best_average_laps",
                 "valid_laps", "total_laps", "completion_ratio", "runs",
                 "most_consecutive_valid_laps", "total_time_ms", "laps_completed", "reached_target",
                 "raced_by_proxy", "penalty_ms", "disqualified_runs")


def _races(event: Event) -> list[Race]:
    return list(db.session.scalars(sa.select(Race).where(Race.event_id == event.id)
                                   .order_by(Race.track_id, Race.id)))


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _num(value) -> str:
    """A CSV cell: '' for None, 3 decimals for a float (ms averages), else str(); text that
    a spreadsheet would run as a formula (starts with one of :data:`FORMULA_STARTS`, e.g. a
    track named ``=HYPERLINK(…)``) gets a leading ``'`` so it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv(columns: tuple, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_num(row.get(c)) for c in columns])
    return out.getvalue()


def laps_csv(event: Event) -> str:
    """One CSV row per lap of every race of the event (any status; ``counted`` says
    whether the race is on the leaderboard, ``valid`` whether the lap counts there).
    Times in ms (``time_s`` the same in seconds, 3 decimals)."""
    tracks = {t.id: t.name for t in event.tracks}
    allowed = event.resets_allowed_per_lap
    rows = []
    for race in _races(event):
        racer = race.racer
        for lap in race.laps:
            valid = race.status in COUNTED and lap.is_valid(allowed)
            rows.append({
                "event_id": event.id, "track_id": race.track_id, "track": tracks.get(race.track_id),
                "race_id": race.id, "race_status": race.status,
                "counted": race.status in COUNTED, "racer_id": racer.id,
                "username": racer.username, "country_code": racer.country_code,
                "raced_by_proxy": race.raced_by_proxy, "lap_number": lap.lap_number,
                "time_ms": lap.time_ms, "time_s": f"{lap.time_ms / 1000:.3f}", "resets": lap.resets,
                "invalidated": lap.invalidated, "dnf": lap.dnf, "valid": valid, "source": lap.source,
                "recorded_at": lap.recorded_at.astimezone(UTC).isoformat(),
                "penalty_ms": lap.penalty_ms, "penalty_reason": lap.penalty_reason,
                "race_penalty_ms": race.penalty_ms, "race_penalty_reason": race.penalty_reason,
                "race_disqualified": race.disqualified, "race_disqualified_reason": race.disqualified_reason,
            })
    return _csv(LAP_COLUMNS, rows)


def racer_rows(event: Event) -> list[dict]:
    """Leaderboard rows per racer: every track, then the combined leaderboard (2+ tracks)."""
    boards = [(t.name, t.id) for t in event.tracks]
    if len(event.tracks) >= 2:
        boards.append((service.COMBINED, service.COMBINED))
    rows = []
    for name, key in boards:
        for e in service.entries(event, key):
            s = e.summary
            rows.append({
                "leaderboard": name, "track_id": key if key != service.COMBINED else "",
                "ranking_method": event.ranking_method, "rank": e.rank, "racer_id": e.racer_id,
                "username": e.username, "country_code": e.country,
                "ranking_value_ms": e.ranking_value_ms, "gap_to_leader_ms": e.gap_to_leader_ms,
                "gap_to_ahead_ms": e.gap_to_ahead_ms, "best_lap_ms": s.best_lap_ms,
                "best_average_ms": s.best_average_ms, "best_average_race_id": s.best_average_race_id,
                "best_average_laps": (f"{s.best_average_first_lap}-{s.best_average_last_lap}"
                                      if s.best_average_first_lap is not None else None),
                "valid_laps": s.valid_laps, "total_laps": s.total_laps,
                "completion_ratio": s.completion_ratio, "runs": s.runs,
                "most_consecutive_valid_laps": s.most_consecutive_valid_laps,
                "total_time_ms": s.total_time_ms, "laps_completed": s.laps_completed,
                "reached_target": s.reached_target, "raced_by_proxy": s.raced_by_proxy,
                "penalty_ms": s.penalty_ms, "disqualified_runs": s.disqualified_runs,
            })
    return rows


def racers_csv(event: Event) -> str:
    """One CSV row per racer and leaderboard (each track, then ``combined``), in rank
    order, ranked by the event's method. Times in ms (averages with 3 decimals)."""
    return _csv(RACER_COLUMNS, racer_rows(event))


# ------------------------------------------------------------------------------ JSON


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def export_event(event: Event) -> dict:
    """The whole event as a JSON-ready dict (format ``drem-event`` version 1): event and
    race config, tracks, racers (by username), races with laps, time penalties (``penalty_ms``,
    ``penalty_reason`` on races and laps) and disqualification. Times in ms."""
    racers: dict[int, dict] = {}
    for reg in event.registrations:
        racers[reg.user_id] = {"username": reg.user.username, "country_code": reg.user.country_code,
                               "colour": reg.colour, "registered": True}
    races = []
    for race in _races(event):
        racer = race.racer
        racers.setdefault(racer.id, {"username": racer.username, "country_code": racer.country_code,
                                     "colour": None, "registered": False})
        races.append({
            "id": race.id, "track_id": race.track_id, "racer": racer.username, "status": race.status,
            "raced_by_proxy": race.raced_by_proxy, "time_limit_ms": race.time_limit_ms,
            "lap_target": race.lap_target, "paused_total_ms": race.paused_total_ms,
            "started_at": _iso(race.started_at), "ended_at": _iso(race.ended_at),
            "submitted_at": _iso(race.submitted_at), "created_at": _iso(race.created_at),
            "penalty_ms": race.penalty_ms, "penalty_reason": race.penalty_reason,
            "disqualified": race.disqualified, "disqualified_reason": race.disqualified_reason,
            "laps": [{"lap_number": lap.lap_number, "time_ms": lap.time_ms, "resets": lap.resets,
                      "invalidated": lap.invalidated, "dnf": lap.dnf, "source": lap.source,
                      "source_id": lap.source_id, "recorded_at": _iso(lap.recorded_at),
                      "penalty_ms": lap.penalty_ms, "penalty_reason": lap.penalty_reason}
                     for lap in race.laps],
        })
    ev = event.to_dict()
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "exported_at": datetime.now(UTC).isoformat(),
        "event": {k: ev[k] for k in ("id", "name", "date", "country_code", "event_type", "sponsor",
                                     "landing_links")} | {"race_config": event.race_config()},
        "tracks": [{k: t[k] for k in ("id", "name", "layout", "direction", "leaderboard_title",
                                      "leaderboard_footer")} for t in ev["tracks"]],
        "racers": list(racers.values()),
        "races": races,
    }


def _when(raw, what: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ServiceError(f"{what} is not an ISO 8601 time: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(data: dict, name: str) -> str:
    """A penalty or disqualification reason of an imported race or lap ("" when absent)."""
    raw = data.get(name)
    if raw is not None and not isinstance(raw, str):
        raise ServiceError(f"{name} must be text", "races")
    return (raw or "")[:200]


#: Most tracks, racers, races and laps per race an import takes (a real event is far below).
IMPORT_CAPS = {"tracks": 20, "racers": 5_000, "races": 20_000, "laps": 1_000}


def import_event(actor: User, data: dict) -> tuple[Event, dict]:
    """Re-create an exported event (a :func:`export_event` dict) in this database.

    Creates the event with its race config and tracks, finds racers by username and
    creates missing racer accounts without a password (they sign in with a one-time
    code), registers them, and re-creates every race with its laps. Live races (ready,
    running, paused) come back as ended, never live; a ready race without laps is
    skipped. Flushes, the caller commits; audited. Returns the event and counts
    ``{"tracks", "racers", "created_users", "races", "laps"}``. ServiceError on a
    document that is not a drem event export, one over :data:`IMPORT_CAPS`, or one whose
    racers name an existing account that is not a racer (laps are never attached to staff).
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ServiceError(f'not a drem event export (expected "format": "{FORMAT}")', "format")
    if data.get("version") != FORMAT_VERSION:
        raise ServiceError(f"unsupported export version {data.get('version')!r}", "version")
    ev, tracks, racers, races = (data.get("event"), data.get("tracks"), data.get("racers") or [],
                                 data.get("races") or [])
    if not isinstance(ev, dict) or not isinstance(tracks, list) or not tracks:
        raise ServiceError("the export needs an event and at least one track", "event")
    if not isinstance(racers, list) or not isinstance(races, list):
        raise ServiceError("racers and races must be lists", "races")
    for what, items in (("tracks", tracks), ("racers", racers), ("races", races)):
        if len(items) > IMPORT_CAPS[what]:
            raise ServiceError(f"the export has {len(items)} {what}; at most {IMPORT_CAPS[what]} can be "
                               "imported", what)

    layouts = set(events_service.track_layouts())
    track_fields = []
    for t in tracks:
        if not isinstance(t, dict):
            raise ServiceError("each track must be an object", "tracks")
        track_fields.append({"name": t.get("name"), "layout": t.get("layout") if t.get("layout") in layouts
                             else "other", "direction": t.get("direction") or "ccw",
                             "leaderboard_title": t.get("leaderboard_title"),
                             "leaderboard_footer": t.get("leaderboard_footer")})
    fields = {k: ev.get(k) for k in ("name", "date", "country_code", "event_type", "sponsor",
                                     "landing_links")}
    fields |= dict(ev.get("race_config") or {})
    fields["tracks"] = track_fields
    event = events_service.create_event(actor, fields)
    track_ids = {t.get("id"): new.id for t, new in zip(tracks, event.tracks, strict=True)}

    users: dict[str, User] = {}
    created = []
    for r in racers:
        if not isinstance(r, dict):
            raise ServiceError("each racer must be an object", "racers")
        name = str(r.get("username") or "")
        user = find_user(name)
        if user is not None and user.role != "racer":
            raise ServiceError(f"racer {name!r} is a {user.role} account here; rename the racer in the "
                               "export (laps are never attached to staff accounts)", "racers")
        if user is None:
            user = create_user(name, None, role="racer", country_code=r.get("country_code"), actor=actor)
            created.append(user.username)
        users[name.lower()] = user
        if r.get("registered") and user.role == "racer":
            db.session.add(EventRacer(event=event, user=user, colour=str(r.get("colour") or "blue")[:8]))

    n_races = n_laps = 0
    for r in races:
        if not isinstance(r, dict):
            raise ServiceError("each race must be an object", "races")
        status = r.get("status")
        if status not in STATUSES:
            raise ServiceError(f"unknown race status {status!r}", "races")
        laps = r.get("laps") or []
        if not isinstance(laps, list):
            raise ServiceError("laps must be a list", "races")
        if len(laps) > IMPORT_CAPS["laps"]:
            raise ServiceError(f"race {r.get('id')!r} has {len(laps)} laps; at most {IMPORT_CAPS['laps']} "
                               "per race can be imported", "races")
        if status == READY and not laps:
            continue
        if status in (READY, RUNNING, PAUSED):
            status = ENDED
        user = users.get(str(r.get("racer") or "").lower())
        if user is None:
            raise ServiceError(f"race {r.get('id')!r}: racer {r.get('racer')!r} is not in the racers list",
                               "races")
        if r.get("track_id") not in track_ids:
            raise ServiceError(f"race {r.get('id')!r}: unknown track {r.get('track_id')!r}", "races")
        created_at = _when(r.get("created_at"), "created_at") or datetime.now(UTC)
        race = Race(event_id=event.id, track_id=track_ids[r["track_id"]], racer_id=user.id, status=status,
                    raced_by_proxy=bool(r.get("raced_by_proxy")),
                    time_limit_ms=whole_number(r, "time_limit_ms", 1, 86_400_000, strict=True),
                    lap_target=r.get("lap_target") if isinstance(r.get("lap_target"), int) else None,
                    paused_total_ms=whole_number(r, "paused_total_ms", 0, 10**9, required=False, default=0, strict=True),
                    started_at=_when(r.get("started_at"), "started_at"),
                    ended_at=_when(r.get("ended_at"), "ended_at"),
                    submitted_at=_when(r.get("submitted_at"), "submitted_at"), created_at=created_at,
                    penalty_ms=whole_number(r, "penalty_ms", 0, 10**9, required=False, default=0, strict=True),
                    penalty_reason=_reason(r, "penalty_reason"), disqualified=bool(r.get("disqualified")),
                    disqualified_reason=_reason(r, "disqualified_reason"))
        db.session.add(race)
        db.session.flush()
        seen = set()
        for i, lap in enumerate(laps):
            if not isinstance(lap, dict):
                raise ServiceError("each lap must be an object", "races")
            number = whole_number(lap, "lap_number", 1, 100_000, strict=True)
            if number in seen:
                raise ServiceError(f"race {r.get('id')!r} has lap number {number} twice", "races")
            seen.add(number)
            source = lap.get("source") if lap.get("source") in LAP_SOURCES else "operator"
            db.session.add(Lap(
                race_id=race.id, lap_number=number, time_ms=whole_number(lap, "time_ms", 0, 10**9, strict=True),
                resets=whole_number(lap, "resets", 0, 10**9, required=False, default=0, strict=True),
                invalidated=bool(lap.get("invalidated")), dnf=bool(lap.get("dnf")), source=source,
                penalty_ms=whole_number(lap, "penalty_ms", 0, 10**9, required=False, default=0, strict=True),
                penalty_reason=_reason(lap, "penalty_reason"),
                source_id=str(lap.get("source_id") or f"import-{i + 1}")[:64],
                recorded_at=_when(lap.get("recorded_at"), "recorded_at") or created_at))
            n_laps += 1
        n_races += 1
    db.session.flush()
    counts = {"tracks": len(event.tracks), "racers": len(users), "created_users": created,
              "races": n_races, "laps": n_laps}
    record_audit(actor, "event.import", "event", event.id, name=event.name,
                 **{k: v for k, v in counts.items() if k != "created_users"})
    return event, counts


def export_filename(event: Event, suffix: str) -> str:
    """A download file name: ``drem-event-<id>-<date>-<suffix>``."""
    day = event.date.isoformat() if isinstance(event.date, date) else "event"
    return f"drem-event-{event.id}-{day}-{suffix}"
