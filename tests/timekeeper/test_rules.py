"""The race rules written once in drem.events.rules."""

from __future__ import annotations

from drem.events import models
from drem.events.rules import (
    COUNTED,
    LAST_LAP_GRACE_MS,
    LIVE,
    MAX_LAP_MS,
    RaceStatus,
    lap_is_valid,
    max_lap_ms,
)


def test_lap_validity_counts_resets_invalidation_and_dnf():
    assert lap_is_valid(False, False, 2, 2) is True
    assert lap_is_valid(False, False, 3, 2) is False
    assert lap_is_valid(False, False, 99, None) is True  # unlimited resets
    assert lap_is_valid(True, False, 0, None) is False
    assert lap_is_valid(False, True, 0, None) is False


def test_status_sets():
    assert set(COUNTED) == {"running", "paused", "ended", "submitted"}
    assert set(LIVE) == {"ready", "running", "paused", "ended"}
    assert RaceStatus.DISCARDED not in COUNTED and RaceStatus.DISCARDED not in LIVE
    assert models.COUNTED is COUNTED and models.LIVE is LIVE  # the tables re-export, never redefine


def test_longest_plausible_lap_follows_the_race_time():
    assert max_lap_ms(3 * 60_000) == 3 * 60_000 + LAST_LAP_GRACE_MS
    assert max_lap_ms(25 * 60_000) == MAX_LAP_MS  # never above the absolute bound
