"""Event import: check an export (every problem at once), preview it, stage it for the
import page, and re-create the event (:func:`import_event`).

The document is the one :func:`drem.leaderboard.export.export_event` writes (``"format":
"drem-event"``, ``"version": 1``). :func:`check_export` finds every problem that would
stop the import (one line each, naming the track, racer, race or lap); :func:`import_event`
refuses a document with any of them before it creates anything, and the request's single
commit means an import is whole or absent. The import page keeps an uploaded document in
``staged_imports`` (:class:`StagedImport`) between its preview and the "Import" button.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from drem.auth.models import User
from drem.auth.service import check_username, create_user, find_user
from drem.events import service as events_service
from drem.events.models import (
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
from drem.leaderboard.export import FORMAT, FORMAT_VERSION
from drem.leaderboard.models import StagedImport
from drem.platform.audit import record_audit
from drem.platform.countries import check_country
from drem.platform.db_types import utcnow
from drem.platform.errors import NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import whole_number

STATUSES = tuple(RaceStatus)
#: Most tracks, racers, races and laps per race an import takes (a real event is far below).
IMPORT_CAPS = {"tracks": 20, "racers": 5_000, "races": 20_000, "laps": 1_000}
#: Most problems :func:`check_export` lists (then "... and N more").
MAX_PROBLEMS = 50
#: A staged document older than this is dropped when anyone uploads the next one.
STAGED_TTL = timedelta(hours=24)


def _when(raw, what: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except (TypeError, ValueError):
        raise ServiceError(f"{what} is not an ISO 8601 time: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(data: dict, name: str) -> str:
    """A penalty or disqualification reason of an imported race or lap ("" when absent);
    ServiceError when it is not text."""
    raw = data.get(name)
    if raw is not None and not isinstance(raw, str):
        raise ServiceError(f"{name} must be text", "races")
    return (raw or "")[:200]


def _try(problems: list[str], where: str, check) -> object:
    """Run ``check()``; on ServiceError add ``"<where>: <message>"`` to ``problems``."""
    try:
        return check()
    except ServiceError as exc:
        problems.append(f"{where}: {exc.message}" if where else exc.message)
        return None


def _event_fields(ev: dict, tracks: list) -> dict:
    layouts = set(events_service.track_layouts())
    fields = {k: ev.get(k) for k in ("name", "date", "country_code", "event_type", "sponsor", "landing_links")}
    fields |= dict(ev.get("race_config") or {}) if isinstance(ev.get("race_config"), dict) else {}
    fields["tracks"] = [{"name": t.get("name"), "layout": t.get("layout") if t.get("layout") in layouts else "other",
                         "direction": t.get("direction") or "ccw", "leaderboard_title": t.get("leaderboard_title"),
                         "leaderboard_footer": t.get("leaderboard_footer")} for t in tracks]
    return fields


def check_export(data) -> list[str]:
    """Every problem that stops ``data`` from being imported, one message each (at most
    :data:`MAX_PROBLEMS`, then a count); ``[]`` when it imports. Checks the format and
    version, the caps (:data:`IMPORT_CAPS`), the event's fields and race config, each
    track, each racer (a valid username; an existing account of that name must be a racer:
    laps are never attached to staff) and each race and lap (status, racer, track, times)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return [f'not a drem event export (expected "format": "{FORMAT}")']
    if data.get("version") != FORMAT_VERSION:
        return [f"unsupported export version {data.get('version')!r}"]
    ev, tracks, racers, races = data.get("event"), data.get("tracks"), data.get("racers") or [], data.get("races") or []
    if not isinstance(ev, dict) or not isinstance(tracks, list) or not tracks:
        return ["the export needs an event and at least one track"]
    if not isinstance(racers, list) or not isinstance(races, list):
        return ["racers and races must be lists"]
    caps = [f"the export has {len(items)} {what}; at most {IMPORT_CAPS[what]} can be imported"
            for what, items in (("tracks", tracks), ("racers", racers), ("races", races))
            if len(items) > IMPORT_CAPS[what]]
    if caps:
        return caps
    problems: list[str] = []
    if not all(isinstance(t, dict) for t in tracks):
        return ["each track must be an object"]
    fields = _event_fields(ev, tracks)
    _try(problems, "event", lambda: events_service.parse_event_fields(fields))
    names: set[str] = set()
    for i, t in enumerate(fields["tracks"], 1):
        parsed = _try(problems, f"track {i}", lambda t=t: events_service.parse_track_fields(t))
        if parsed and parsed["name"].lower() in names:
            problems.append(f"track {i}: the name {parsed['name']!r} is used twice")
        elif parsed:
            names.add(parsed["name"].lower())
    usernames = _check_racers(problems, racers)
    track_ids = {t.get("id") for t in tracks}
    for r in races:
        _check_race(problems, r, usernames, track_ids)
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [f"... and {len(problems) - MAX_PROBLEMS} more problems"]
    return problems


def _check_racers(problems: list[str], racers: list) -> set[str]:
    usernames: set[str] = set()
    for i, r in enumerate(racers, 1):
        if not isinstance(r, dict):
            problems.append(f"racer {i}: each racer must be an object")
            continue
        name = str(r.get("username") or "")
        if _try(problems, f"racer {i} ({name!r})", lambda name=name: check_username(name)) is None:
            continue
        if name.lower() in usernames:
            problems.append(f"racer {name!r} is listed twice")
        usernames.add(name.lower())
        _try(problems, f"racer {name!r}", lambda r=r: check_country(r.get("country_code")))
        user = find_user(name)
        if user is not None and user.role != "racer":
            problems.append(f"racer {name!r} is a {user.role} account here; rename the racer in the export "
                            "(laps are never attached to staff accounts)")
    return usernames


def _check_race(problems: list[str], r, usernames: set[str], track_ids: set) -> None:
    if not isinstance(r, dict):
        problems.append("each race must be an object")
        return
    where = f"race {r.get('id')!r}"
    if r.get("status") not in STATUSES:
        problems.append(f"{where}: unknown race status {r.get('status')!r}")
    if r.get("status") == READY and not r.get("laps"):
        return  # a set-up race without laps is skipped: nothing of it is imported
    if str(r.get("racer") or "").lower() not in usernames:
        problems.append(f"{where}: racer {r.get('racer')!r} is not in the racers list")
    if r.get("track_id") not in track_ids:
        problems.append(f"{where}: unknown track {r.get('track_id')!r}")
    _try(problems, where, lambda: whole_number(r, "time_limit_ms", 1, 86_400_000, strict=True))
    _try(problems, where, lambda: whole_number(r, "paused_total_ms", 0, 10**9, required=False, strict=True))
    _try(problems, where, lambda: whole_number(r, "penalty_ms", 0, 10**9, required=False, strict=True))
    for key in ("penalty_reason", "disqualified_reason"):
        _try(problems, where, lambda key=key: _reason(r, key))
    for key in ("created_at", "started_at", "ended_at", "submitted_at"):
        _try(problems, where, lambda key=key: _when(r.get(key), key))
    laps = r.get("laps") or []
    if not isinstance(laps, list):
        problems.append(f"{where}: laps must be a list")
        return
    if len(laps) > IMPORT_CAPS["laps"]:
        problems.append(f"{where} has {len(laps)} laps; at most {IMPORT_CAPS['laps']} per race can be imported")
        return
    seen: set[int] = set()
    for i, lap in enumerate(laps, 1):
        if not isinstance(lap, dict):
            problems.append(f"{where}, lap {i}: each lap must be an object")
            continue
        number = _try(problems, f"{where}, lap {i}", lambda lap=lap: whole_number(lap, "lap_number", 1, 100_000,
                                                                                strict=True))
        if number is not None and number in seen:
            problems.append(f"{where} has lap number {number} twice")
        seen.add(number)
        _try(problems, f"{where}, lap {i}", lambda lap=lap: whole_number(lap, "time_ms", 0, 10**9, strict=True))
        _try(problems, f"{where}, lap {i}", lambda lap=lap: whole_number(lap, "resets", 0, 10**9, required=False,
                                                                        strict=True))
        _try(problems, f"{where}, lap {i}", lambda lap=lap: _when(lap.get("recorded_at"), "recorded_at"))
        _try(problems, f"{where}, lap {i}", lambda lap=lap: whole_number(lap, "penalty_ms", 0, 10**9, required=False,
                                                                        strict=True))
        _try(problems, f"{where}, lap {i}", lambda lap=lap: _reason(lap, "penalty_reason"))


def preview_import(data) -> dict:
    """What importing ``data`` would do, without changing anything:
    ``{problems: [str], conflicts: [str], event: {name, date} | None, tracks: [{name, layout,
    direction}], racers, new_racers: [username], existing_racers: [username], races,
    skipped_races, live_races, laps}``. ``problems`` stop the import (see
    :func:`check_export`); ``conflicts`` do not, but say what the import does about them (a
    second event of the same name and date, racers joined to existing accounts, layouts
    this server does not have)."""
    problems = check_export(data)
    out = {"problems": problems, "conflicts": [], "event": None, "tracks": [], "racers": 0, "new_racers": [],
           "existing_racers": [], "races": 0, "skipped_races": 0, "live_races": 0, "laps": 0}
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict) or not isinstance(data.get("tracks"), list):
        return out
    ev = data["event"]
    out["event"] = {"name": str(ev.get("name") or ""), "date": str(ev.get("date") or "")}
    layouts = set(events_service.track_layouts())
    for t in data["tracks"]:
        if isinstance(t, dict):
            out["tracks"].append({"name": str(t.get("name") or ""), "layout": t.get("layout") if t.get("layout") in
                                  layouts else "other", "direction": t.get("direction") or "ccw"})
            if t.get("layout") not in layouts:
                out["conflicts"].append(f"track {t.get('name')!r}: layout {t.get('layout')!r} is not on this server; "
                                        "it becomes 'other'")
    same = db.session.scalars(db.select(Event).where(Event.name == out["event"]["name"]))
    if any(str(e.date) == out["event"]["date"] for e in same):
        out["conflicts"].append(f"an event called {out['event']['name']!r} on {out['event']['date']} exists "
                                "already; the import makes a second one")
    if any(p.startswith("the export has") for p in problems):  # over the caps: count nothing more
        return out
    racers = [r for r in data.get("racers") or [] if isinstance(r, dict)] if isinstance(data.get("racers"), list) else []
    for r in racers:
        name = str(r.get("username") or "")
        (out["existing_racers"] if find_user(name) is not None else out["new_racers"]).append(name)
    out["racers"] = len(racers)
    if out["existing_racers"]:
        out["conflicts"].append(f"{len(out['existing_racers'])} racer(s) have accounts here already; their runs join "
                                "those accounts: " + ", ".join(out["existing_racers"][:20]))
    for r in data.get("races") if isinstance(data.get("races"), list) else []:
        if not isinstance(r, dict):
            continue
        laps = r.get("laps") if isinstance(r.get("laps"), list) else []
        if r.get("status") == READY and not laps:
            out["skipped_races"] += 1
            continue
        out["live_races"] += r.get("status") in (READY, RUNNING, PAUSED)
        out["races"] += 1
        out["laps"] += len(laps)
    return out


def import_event(actor: User, data: dict) -> tuple[Event, dict]:
    """Re-create an exported event (a :func:`~drem.leaderboard.export.export_event` dict)
    in this database.

    Creates the event with its race config and tracks, finds racers by username and
    creates missing racer accounts without a password (they sign in with a one-time
    code), registers them, and re-creates every race with its laps. Live races (ready,
    running, paused) come back as ended, never live; a ready race without laps is
    skipped. Flushes, the caller commits; audited (``event.import``). Returns the event and
    counts ``{"tracks", "racers", "created_users", "races", "laps"}``. Raises ServiceError
    (nothing created) listing every problem of :func:`check_export`, joined by "; ".
    """
    problems = check_export(data)
    if problems:
        raise ServiceError("; ".join(problems))
    tracks, racers, races = data["tracks"], data.get("racers") or [], data.get("races") or []
    event = events_service.create_event(actor, _event_fields(data["event"], tracks))
    track_ids = {t.get("id"): new.id for t, new in zip(tracks, event.tracks, strict=True)}

    users: dict[str, User] = {}
    created = []
    for r in racers:
        name = str(r.get("username") or "")
        user = find_user(name)
        if user is None:
            user = create_user(name, None, role="racer", country_code=r.get("country_code"), actor=actor)
            created.append(user.username)
        users[name.lower()] = user
        if r.get("registered"):
            db.session.add(EventRacer(event=event, user=user, colour=str(r.get("colour") or "blue")[:8]))

    n_races = n_laps = 0
    for r in races:
        laps, status = r.get("laps") or [], r["status"]
        if status == READY and not laps:
            continue
        created_at = _when(r.get("created_at"), "created_at") or datetime.now(UTC)
        race = Race(event_id=event.id, track_id=track_ids[r["track_id"]], racer_id=users[str(r["racer"]).lower()].id,
                    status=ENDED if status in (READY, RUNNING, PAUSED) else status,
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
        for i, lap in enumerate(laps):
            db.session.add(Lap(
                race_id=race.id, lap_number=whole_number(lap, "lap_number", 1, 100_000, strict=True),
                time_ms=whole_number(lap, "time_ms", 0, 10**9, strict=True),
                resets=whole_number(lap, "resets", 0, 10**9, required=False, default=0, strict=True),
                invalidated=bool(lap.get("invalidated")), dnf=bool(lap.get("dnf")),
                source=lap.get("source") if lap.get("source") in LAP_SOURCES else "operator",
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


# ------------------------------------------------------------------ the import page's stage

def stage_import(actor: User, raw: bytes, filename: str | None) -> StagedImport:
    """Keep an uploaded export for ``actor``'s preview (their earlier staged document and
    everyone's older than :data:`STAGED_TTL` are dropped). Flushes. Raises ServiceError
    when the file is not a JSON object."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(f"the file is not JSON ({exc})", "file") from None
    if not isinstance(data, dict):
        raise ServiceError("the file is not a drem event export (a JSON object)", "file")
    db.session.execute(db.delete(StagedImport).where(
        (StagedImport.user_id == actor.id) | (StagedImport.created_at < utcnow() - STAGED_TTL)))
    staged = StagedImport(user_id=actor.id, filename=(filename or "export.json")[:200], document=data)
    db.session.add(staged)
    db.session.flush()
    return staged


def get_staged(actor: User, staged_id: int) -> StagedImport:
    """``actor``'s staged document ``staged_id``; NotFound when it is gone (imported,
    discarded, expired) or another user's."""
    staged = db.session.get(StagedImport, staged_id)
    if staged is None or staged.user_id != actor.id:
        raise NotFound("this upload is gone (imported, discarded or expired); upload the file again")
    return staged


def import_staged(actor: User, staged: StagedImport) -> tuple[Event, dict]:
    """:func:`import_event` of a staged document, which is then dropped (same transaction)."""
    event, counts = import_event(actor, staged.document)
    discard_staged(staged)
    return event, counts


def discard_staged(staged: StagedImport) -> None:
    """Drop a staged document. Flushes."""
    db.session.delete(staged)
    db.session.flush()
