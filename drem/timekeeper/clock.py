"""The race clock, kept as server timestamps so a reload or a restart resumes it exactly.

elapsed = (paused_at or now) - started_at - paused_total_ms, in whole milliseconds.
Pure functions of a race row and ``now`` (timezone-aware UTC).
"""

from __future__ import annotations

from datetime import datetime


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


def elapsed_ms(race, now: datetime) -> int:
    """Race time run so far in ms (0 before the start; frozen while paused)."""
    if race.started_at is None:
        return 0
    until = race.paused_at or race.ended_at or now
    return max(0, _ms(until - race.started_at) - race.paused_total_ms)


def time_left_ms(race, now: datetime) -> int:
    """Race time left in ms (never below 0)."""
    return max(0, race.time_limit_ms - elapsed_ms(race, now))


def is_time_up(race, now: datetime) -> bool:
    """True once the race time has run out (the lap in progress may still finish)."""
    return race.started_at is not None and elapsed_ms(race, now) >= race.time_limit_ms


def current_lap_ms(race, now: datetime) -> int:
    """Time in ms of the lap in progress (since the last lap ended, pauses excluded)."""
    return max(0, elapsed_ms(race, now) - race.lap_start_ms)
