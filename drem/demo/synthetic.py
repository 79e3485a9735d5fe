"""A synthetic event export for benchmarks and tests: a leaderboard of many racers with
times, built as an ``export.json`` document (format ``drem-event``, version 1) so that it
goes in through the real import (``POST /api/events/import``)."""

from __future__ import annotations

import random

#: Countries given to the racers in turn.
COUNTRIES = ("DE", "GB", "FR", "SE", "NL", "US", "JP", "IT", "ES", "PL")


def board_export(racers: int, *, name: str = "Benchmark Cup", prefix: str = "bench", live: str = "live",
                 seed: int = 20, time_limit_ms: int = 240_000, resets: bool = False,
                 proxy_every: int | None = None, title: str | None = None) -> dict:
    """An export document of one event on one track (id 1, best-lap ranking, 10 min race
    time): ``racers`` racers ``<prefix>0000``… with one submitted run of 5 laps each (lap
    times 9,000-14,000 ms at random from ``seed``; with ``resets`` a quarter of the laps
    have one reset; with ``proxy_every`` every n-th run is raced by proxy), plus the
    registered racer ``live`` with no run, who races in the benchmark or test."""
    rnd = random.Random(seed)
    runs = []
    for i in range(racers):
        laps = [{"lap_number": n, "time_ms": rnd.randint(9000, 14000),
                 "resets": rnd.choice([0, 0, 0, 1]) if resets else 0, "invalidated": False, "dnf": False,
                 "source": "timer", "source_id": f"s{i}-{n}",
                 "recorded_at": f"2026-11-22T10:{i % 60:02d}:{n * 10:02d}+00:00"} for n in range(1, 6)]
        runs.append({"id": i + 1, "track_id": 1, "racer": f"{prefix}{i:04d}", "status": "submitted",
                     "raced_by_proxy": bool(proxy_every) and i % proxy_every == 0, "time_limit_ms": time_limit_ms,
                     "lap_target": None, "paused_total_ms": 0, "started_at": "2026-11-22T10:00:00+00:00",
                     "ended_at": None, "submitted_at": None, "created_at": "2026-11-22T10:00:00+00:00",
                     "laps": laps})
    return {"format": "drem-event", "version": 1,
            "event": {"name": name, "date": "2026-11-22", "country_code": "DE",
                      "event_type": "private_track_race", "sponsor": None, "landing_links": [],
                      "race_config": {"race_time_min": 10, "resets_allowed_per_lap": 1,
                                      "ranking_method": "best_lap", "averaging_window": 3,
                                      "max_runs_per_racer": None, "lap_target": None}},
            "tracks": [{"id": 1, "name": "Main", "layout": "other", "direction": "ccw",
                        "leaderboard_title": title, "leaderboard_footer": "drem" if title else None}],
            "racers": [{"username": f"{prefix}{i:04d}", "country_code": COUNTRIES[i % len(COUNTRIES)],
                        "colour": "blue", "registered": True} for i in range(racers)]
            + [{"username": live, "country_code": "SE", "colour": "red", "registered": True}],
            "races": runs}
