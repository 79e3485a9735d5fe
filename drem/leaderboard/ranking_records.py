"""Plain input and output types of the ranking engine.

No Flask, no database: the leaderboard service turns database rows into these
dataclasses, calls :mod:`drem.leaderboard.ranking`, and serialises the resulting
:class:`LeaderboardEntry` objects with :meth:`LeaderboardEntry.to_dict`.

Units: lap times, averages, totals and gaps are milliseconds (``*_ms``); points in
time (``recorded_at``, ``started_at``, ``*_at``) are UNIX seconds (float).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

RankingMethod = Literal["best_lap", "best_average", "total_time"]

#: The ranking methods of a race config (DESIGN.md "Ranking").
RANKING_METHODS: tuple[str, ...] = ("best_lap", "best_average", "total_time")

#: Bounds of the averaging window (number of consecutive laps averaged).
MIN_AVERAGING_WINDOW = 3
MAX_AVERAGING_WINDOW = 7


@dataclass(slots=True)
class LapInput:
    """One timed lap.

    ``time_ms`` is the lap time in integer milliseconds, ``resets`` the number of
    times the car was put back on the track by hand during the lap, ``invalidated``
    True when the operator struck the lap out, ``recorded_at`` when the lap was
    recorded (UNIX seconds; used for the "set first" tie-break). ``lap_id`` is unique
    over the event (database primary key, or the id made on the car). ``penalty_ms`` is
    the operator's time penalty on this lap (ms, >= 0), added to the lap's time
    (``docs/ranking.md`` "Penalties and disqualification").
    """

    lap_id: Hashable
    race_id: Hashable
    racer_id: Hashable
    lap_number: int
    time_ms: int
    resets: int
    invalidated: bool
    recorded_at: float
    penalty_ms: int = 0


@dataclass(slots=True)
class RaceInput:
    """One racer's run on one track, with its laps (any order; ordered by ``lap_number``).

    ``raced_by_proxy`` is True when someone else drove the racer's model for them.
    ``penalty_ms`` is a time penalty on the whole run (ms, >= 0) and ``disqualified``
    True when the run was disqualified (a run used, with no result): both as
    ``docs/ranking.md`` "Penalties and disqualification" says.
    """

    race_id: Hashable
    racer_id: Hashable
    track_id: Hashable
    started_at: float
    laps: list[LapInput] = field(default_factory=list)
    raced_by_proxy: bool = False
    penalty_ms: int = 0
    disqualified: bool = False


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """The ranking part of a race config.

    - ``method``: ``"best_lap"``, ``"best_average"`` or ``"total_time"`` (lap-count race);
    - ``resets_allowed_per_lap``: a lap with more resets is invalid; ``None`` = unlimited;
    - ``averaging_window``: N consecutive valid laps averaged by ``best_average`` (3-7);
    - ``lap_target``: valid laps to complete in one run; required by ``total_time``,
      optional otherwise (then only the summary's ``total_time_ms``/``laps_completed``
      are filled).

    Raises ``ValueError`` on a value outside these ranges.
    """

    method: str = "best_lap"
    resets_allowed_per_lap: int | None = None
    averaging_window: int = 3
    lap_target: int | None = None

    def __post_init__(self) -> None:
        if self.method not in RANKING_METHODS:
            raise ValueError(
                f"unknown ranking method {self.method!r}; expected one of {RANKING_METHODS}"
            )
        if self.resets_allowed_per_lap is not None and self.resets_allowed_per_lap < 0:
            raise ValueError("resets_allowed_per_lap must be >= 0 or None (unlimited)")
        if not MIN_AVERAGING_WINDOW <= self.averaging_window <= MAX_AVERAGING_WINDOW:
            raise ValueError(
                f"averaging_window must be {MIN_AVERAGING_WINDOW}-{MAX_AVERAGING_WINDOW}, "
                f"got {self.averaging_window}"
            )
        if self.lap_target is not None and self.lap_target < 1:
            raise ValueError("lap_target must be >= 1 or None")
        if self.method == "total_time" and self.lap_target is None:
            raise ValueError("ranking method 'total_time' needs a lap_target")


@dataclass(frozen=True, slots=True)
class RacerInfo:
    """What the leaderboard shows about a racer besides results."""

    racer_id: Hashable
    username: str
    country_code: str | None = None


@dataclass(slots=True)
class RacerSummary:
    """Per-racer statistics over the ranked runs (all ms values are integer ms except averages).

    - ``best_lap_ms`` / ``best_lap_at`` / ``best_lap_race_id`` / ``best_lap_number``:
      lowest valid lap and when it was recorded (UNIX s);
    - ``best_average_ms`` (float) / ``best_average_race_id`` / ``best_average_first_lap`` /
      ``best_average_last_lap`` / ``best_average_at``: lowest mean of N consecutive valid
      laps in one run, where it lies and when its last lap was recorded;
    - ``valid_laps`` / ``total_laps`` / ``completion_ratio`` (valid/total, None without laps);
    - ``runs``: number of runs; ``most_consecutive_valid_laps``: longest streak of valid
      laps inside one run;
    - ``total_time_ms`` / ``laps_completed`` / ``reached_target``: only with a lap target
      (else None): the deciding run's first ``lap_target`` valid laps (or all its valid
      laps if it fell short), their total time and count;
    - ``raced_by_proxy``: True if any run was driven by proxy;
    - ``penalty_ms``: the time penalties (ms) of the racer's runs that are not
      disqualified, lap and race penalties added up; ``best_lap_penalty_ms``: the part of
      ``best_lap_ms`` that is penalty (0 without); ``disqualified_runs``: runs disqualified.
    """

    best_lap_ms: int | None = None
    best_lap_at: float | None = None
    best_lap_race_id: Hashable | None = None
    best_lap_number: int | None = None
    best_average_ms: float | None = None
    best_average_race_id: Hashable | None = None
    best_average_first_lap: int | None = None
    best_average_last_lap: int | None = None
    best_average_at: float | None = None
    valid_laps: int = 0
    total_laps: int = 0
    completion_ratio: float | None = None
    runs: int = 0
    most_consecutive_valid_laps: int = 0
    total_time_ms: int | None = None
    laps_completed: int | None = None
    reached_target: bool | None = None
    raced_by_proxy: bool = False
    penalty_ms: int = 0
    best_lap_penalty_ms: int = 0
    disqualified_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the summary (same keys as the attributes)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class LeaderboardEntry:
    """One line of a leaderboard.

    ``rank`` starts at 1 and is unique (the tie-breaks always separate racers).
    ``ranking_value_ms`` is the value ranked by the event's method (best lap ms,
    best average ms as float, or total time ms of the lap target); None when the
    racer has no such value (no valid lap, no full averaging window, target not
    reached). ``gap_to_leader_ms`` / ``gap_to_ahead_ms`` are ``ranking_value_ms``
    minus the leader's / the racer ahead's, None when either value is None.
    """

    rank: int
    racer_id: Hashable
    username: str
    country: str | None
    ranking_value_ms: int | float | None
    gap_to_leader_ms: int | float | None
    gap_to_ahead_ms: int | float | None
    summary: RacerSummary

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the summary is nested under ``"summary"``."""
        return {
            "rank": self.rank,
            "racer_id": self.racer_id,
            "username": self.username,
            "country": self.country,
            "ranking_value_ms": self.ranking_value_ms,
            "gap_to_leader_ms": self.gap_to_leader_ms,
            "gap_to_ahead_ms": self.gap_to_ahead_ms,
            "summary": self.summary.to_dict(),
        }
