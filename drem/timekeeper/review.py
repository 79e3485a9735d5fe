"""The review step of an ended race on the timekeeper console: before Submit the operator
marks laps valid or invalid, corrects resets, adds a lap the console missed, gives time
penalties (per lap or per race) and disqualifies.

Each edit goes through the race-admin function that does it for finished races
(:mod:`drem.events.race_admin`: audited, the leaderboard ranks the race again after the
commit) and then pushes the race state to the consoles. Only the race's operator (or an
admin) reviews, and only while the race is ``ended``; after Submit, race admin edits.
"""

from __future__ import annotations

import uuid

from drem.events import race_admin
from drem.events.models import ENDED, Lap, Race
from drem.platform.errors import ServiceError
from drem.timekeeper.laps import existing_lap
from drem.timekeeper.service import _need, check_operator, push_state

#: The lap fields the review may change (race admin's ``edit_lap`` checks each value).
LAP_FIELDS = ("invalidated", "resets", "penalty_ms", "penalty_reason")


def _reviewing(actor, race: Race, action: str) -> None:
    check_operator(actor, race)
    _need(race, ENDED, action=action)


def review_lap(actor, race: Race, lap_number: int, data: dict) -> Lap:
    """Change lap ``lap_number`` of the ended ``race``: ``{"invalidated"?: bool, "resets"?:
    0-1000, "penalty_ms"?: whole ms (0 removes), "penalty_reason"?: text}``. Audited
    (``lap.edit``). Forbidden for another operator's race, Conflict unless the race is
    ended, ServiceError for an unknown lap, another field or a bad value."""
    _reviewing(actor, race, "review a lap")
    lap = next((lap for lap in race.laps if lap.lap_number == lap_number), None)
    if lap is None:
        raise ServiceError(f"race {race.id} has no lap {lap_number}", "lap_number")
    unknown = sorted(set(data) - set(LAP_FIELDS))
    if unknown:
        raise ServiceError(f"a review changes only {', '.join(LAP_FIELDS)}, not {', '.join(unknown)}")
    race_admin.edit_lap(actor, lap, data)
    push_state(race)
    return lap


def add_missed_lap(actor, race: Race, time_ms: int, lap_number: int | None = None,
                   source_id: str | None = None) -> tuple[Lap, bool]:
    """Add a lap the console missed to the ended ``race``: ``time_ms`` whole ms, inserted
    as lap ``lap_number`` (None: after the last; later laps move up by one). Audited
    (``lap.restore`` with ``missed``). A repeated ``source_id`` (made by the console)
    returns the stored lap with created False. Returns (lap, created). Errors as
    :func:`review_lap`, and ServiceError for a time outside the plausible lap times."""
    _reviewing(actor, race, "add a lap")
    if source_id:
        seen = existing_lap(race, source_id)
        if seen is not None:
            return seen, False
    lap = race_admin.restore_lap(actor, race, time_ms, "operator", source_id or f"missed-{uuid.uuid4().hex[:16]}",
                                 number=lap_number, detail={"missed": True})
    push_state(race)
    return lap, True


def penalise(actor, race: Race, data: dict) -> Race:
    """The whole run's time penalty: ``{"penalty_ms": whole ms (0 removes), "penalty_reason"}``
    (:func:`drem.events.race_admin.penalise_race`, audited). Errors as :func:`review_lap`."""
    _reviewing(actor, race, "give a penalty")
    race_admin.penalise_race(actor, race, data)
    push_state(race)
    return race


def disqualify(actor, race: Race, data: dict) -> Race:
    """Disqualify the run (``{"disqualified": true, "reason"}``) or lift it
    (:func:`drem.events.race_admin.disqualify_race`, audited). Errors as :func:`review_lap`."""
    _reviewing(actor, race, "disqualify")
    race_admin.disqualify_race(actor, race, data)
    push_state(race)
    return race
