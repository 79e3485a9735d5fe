"""Results: CSV exports (per lap, per racer) and a JSON export of a whole event.

The JSON document (``"format": "drem-event"``, ``"version": 1``) holds the event with
its race config and landing links, its tracks, its racers (by username, with country
and tail-light colour) and every race with its laps, so that
:func:`drem.leaderboard.imports.import_event` re-creates the event in another (e.g.
empty) database with the same leaderboard.
Times are integer milliseconds, points in time ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import sqlalchemy as sa

from drem.events.models import (
    COUNTED,
    Event,
    Race,
    RaceStatus,
)
from drem.leaderboard import service
from drem.platform.extensions import db

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


def export_filename(event: Event, suffix: str) -> str:
    """A download file name: ``drem-event-<id>-<date>-<suffix>``."""
    day = event.date.isoformat() if isinstance(event.date, date) else "event"
    return f"drem-event-{event.id}-{day}-{suffix}"
