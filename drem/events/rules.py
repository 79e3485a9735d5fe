"""The race rules every package shares, each written once: the race statuses
(:class:`RaceStatus` with its :data:`COUNTED` and :data:`LIVE` sets), lap validity
(:func:`lap_is_valid`) and the plausible lap times (:data:`MIN_LAP_MS`, :data:`MAX_LAP_MS`, :func:`max_lap_ms`).

Plain Python with no imports of drem, so the tables (:mod:`drem.events.models`), the
leaderboard-version listener (:mod:`drem.events.versions`), the timekeeper, the fleet
and the ranking engine all take them from here.
"""

from __future__ import annotations

from enum import StrEnum


class RaceStatus(StrEnum):
    """Where a race is: ready -> running <-> paused -> ended -> submitted | discarded.

    Stored as its text value (``race.status == "running"`` and ``RaceStatus.RUNNING``
    compare equal)."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    SUBMITTED = "submitted"
    DISCARDED = "discarded"


READY, RUNNING, PAUSED, ENDED, SUBMITTED, DISCARDED = RaceStatus
#: Races whose laps count on the leaderboard and towards max runs: not ready, not discarded.
COUNTED = (RUNNING, PAUSED, ENDED, SUBMITTED)
#: Races on a track right now (set up and not yet submitted or discarded): one per track.
LIVE = (READY, RUNNING, PAUSED, ENDED)

#: Shortest plausible lap (ms). Nothing drives a lap in under a second: a shorter one is
#: a double press, a bouncing sensor or a car's clock glitch. Applies to every lap source
#: (operator, car, timer) and to race-admin edits.
MIN_LAP_MS = 1000
#: Longest lap time accepted anywhere (ms): a race lasts at most 10 minutes (race config)
#: and a lap may finish after the time ran out, so a lap over 30 minutes is a broken
#: clock. Bounds stored laps, race-admin edits and the laps a car may report at all.
MAX_LAP_MS = 30 * 60 * 1000
#: How long after its race time a lap may still finish (ms): see :func:`max_lap_ms`.
LAST_LAP_GRACE_MS = 10 * 60 * 1000


def max_lap_ms(time_limit_ms: int) -> int:
    """Longest plausible lap (ms) in a race of ``time_limit_ms``: the whole race time plus
    :data:`LAST_LAP_GRACE_MS`, never above :data:`MAX_LAP_MS`. A longer lap from a car or a
    timer is a clock fault (a timer that missed crossings, a device clock that jumped)."""
    return min(MAX_LAP_MS, time_limit_ms + LAST_LAP_GRACE_MS)


def lap_is_valid(invalidated: bool, dnf: bool, resets: int, resets_allowed_per_lap: int | None) -> bool:
    """True when a lap counts on the leaderboard: not invalidated by the operator, not a
    DNF, and its resets within the event's ``resets_allowed_per_lap`` (None: unlimited).

    The one statement of the rule (DESIGN.md "Ranking"); every lap dict the server sends
    carries its result as ``valid``, so no display derives it."""
    if invalidated or dnf:
        return False
    return resets_allowed_per_lap is None or resets <= resets_allowed_per_lap
