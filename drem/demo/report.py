"""Check the server's results against the cars' own lap logs, and print the summary.

A car writes every lap it drives to ``laps.jsonl`` before it reports it; the server
stores each lap once per car-made ``lap_id``. So: a lap in a car's log that the server
never stored is lost; the server cannot hold a lap twice; and the best lap per racer
computed from the cars' logs must equal the leaderboard's. A "DeepRacer" (``--real-cars``)
reports no laps: its races are timed by the lap timer alone, and its "log" is the
simulator lap log of its console stand-in, which the timer replayed.
"""

from __future__ import annotations

import json
from pathlib import Path


def car_log(data_dir: Path) -> list[dict]:
    """The laps a car wrote to ``laps.jsonl`` in its data folder, oldest first (an
    unfinished last line of a killed car is skipped)."""
    path = data_dir / "laps.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # an unfinished last line of a killed car
    return out


#: How far a lap timed by the demo's lap timer may be from the car's own time (ms): the
#: pulse is played on the car's schedule, stamped at the mock pin's edge.
TIMER_TOLERANCE_MS = 2


def compare_with_car_logs(api, cars, races: list[dict], boards: dict, event: dict,
                          timed: dict[int, list[dict]] | None = None,
                          deepracer_races: list[int] | None = None,
                          late_ms: dict[int, list[float]] | None = None) -> dict:
    """Compare (see module docstring). ``timed``: race id -> the car laps the demo's lap
    timer replayed for that race (its track is timed by the timer: each timer lap must be
    within :data:`TIMER_TOLERANCE_MS` of the car's lap, and the racer's best lap on the
    board within it of the best replayed car lap; the timer's laps carry the operator's
    resets, none). ``deepracer_races``: the ids of the DeepRacer's races among ``timed``; each
    of their laps must come from the timer (``source == "timer"``), as many as the stand-in's
    log holds up to the race's end. ``late_ms``: race id -> how late the timer program played
    each pulse of the race (:meth:`drem.demo.timer_process.DemoTrackTimer.late_ms`); timer lap
    ``i`` may also differ from the car's by the lateness of pulses ``i`` and ``i + 1``. Returns ``{"car_laps", "lost_laps", "doubled_laps",
    "timer_laps", "deepracer": [{"race_id", "racer", "laps_ms", "sources", "standin_laps_ms"}],
    "leaderboard_matches_car_logs", "mismatches"}``."""
    limit = event["race_config"]["resets_allowed_per_lap"]
    counted = {r["id"]: r for r in races if r["status"] == "submitted"}
    car_laps, lost, doubled = 0, [], 0
    best_from_logs: dict[str, int] = {}
    for car in cars:
        server = {lap["lap_id"]: lap for lap in api.get(f"/api/fleet/cars/{car.car_id}/laps",
                                                        params={"limit": 10000})["laps"]}
        seen = set()
        for lap in car_log(car.data_dir):
            lap_id = lap.get("lap_id")
            car_laps += 1
            if lap_id in seen:
                doubled += 1
            seen.add(lap_id)
            stored = server.get(lap_id)
            if stored is None:
                lost.append(lap_id)
                continue
            race = counted.get(stored.get("race_id"))
            if race is None:
                continue  # driven while no race ran (before start, after the end)
            in_race = [x for x in race["laps"] if x["source_id"] == f"car:{lap_id}"]
            if len(in_race) != 1:
                doubled += max(0, len(in_race) - 1)
                lost.append(lap_id)
                continue
            valid = (limit is None or lap["resets"] <= limit) and not in_race[0]["invalidated"]
            if valid:
                name = race["racer"]
                best_from_logs[name] = min(best_from_logs.get(name, 10**12), int(lap["lap_time_ms"]))
    timer_laps, tolerance, timer_mismatches = 0, {}, {}
    for race_id, replayed in (timed or {}).items():
        race = counted.get(race_id)
        if race is None:
            continue
        name = race["racer"]
        got = [lap["time_ms"] for lap in race["laps"] if lap["source"] == "timer"]
        want = [int(lap["lap_time_ms"]) for lap in replayed][:len(got)]
        timer_laps += len(got)
        late = (late_ms or {}).get(race_id, [])
        allowed = [TIMER_TOLERANCE_MS + sum(late[i:i + 2]) for i in range(len(got))]
        if len(want) != len(got) or any(abs(a - b) > ok for a, b, ok in zip(got, want, allowed, strict=False)):
            timer_mismatches[f"race {race_id} (lap timer)"] = {"car_logs": want, "leaderboard": got}
        if want:
            best_from_logs[name] = min(best_from_logs.get(name, 10**12), min(want))
            tolerance[name] = max(tolerance.get(name, 0), *allowed, TIMER_TOLERANCE_MS)
    deepracer = []
    for race_id in deepracer_races or []:
        race = counted.get(race_id)
        replayed = [int(lap["lap_time_ms"]) for lap in (timed or {}).get(race_id, [])]
        if race is None:
            timer_mismatches[f"race {race_id} (DeepRacer)"] = {"car_logs": replayed, "leaderboard": None}
            continue
        sources = sorted({lap["source"] for lap in race["laps"]})
        deepracer.append({"race_id": race_id, "racer": race["racer"], "laps_ms": [lap["time_ms"] for lap in race["laps"]],
                          "sources": sources, "standin_laps_ms": replayed})
        if not race["laps"] or sources != ["timer"]:
            timer_mismatches[f"race {race_id} (DeepRacer laps not all from the timer: {sources})"] = {
                "car_logs": replayed, "leaderboard": [lap["time_ms"] for lap in race["laps"]]}
    best_board: dict[str, int] = {}
    for entries in boards.values():
        for e in entries:
            if e["summary"].get("best_lap_ms") is not None:
                best_board[e["username"]] = min(best_board.get(e["username"], 10**12), e["summary"]["best_lap_ms"])
    mismatches = {name: {"car_logs": best_from_logs.get(name), "leaderboard": best_board.get(name)}
                  for name in set(best_from_logs) | set(best_board)
                  if best_from_logs.get(name) is None or best_board.get(name) is None
                  or abs(best_from_logs[name] - best_board[name]) > tolerance.get(name, 0)}
    mismatches.update(timer_mismatches)
    return {"car_laps": car_laps, "lost_laps": len(lost), "doubled_laps": doubled, "timer_laps": timer_laps,
            "deepracer": deepracer, "leaderboard_matches_car_logs": not mismatches and not lost, "mismatches": mismatches}


def format_summary(summary: dict) -> str:
    """The human-readable summary printed by ``drem demo``."""
    lines = [f"drem demo event {summary['event_id']} at {summary['url']}"]
    for track, entries in summary["leaderboards"].items():
        lines.append(f"\n  Leaderboard · {track}")
        lines.append(f"  {'#':>3}  {'racer':<18} {'best lap':>10} {'laps':>6} {'gap':>9}")
        for e in entries:
            s = e["summary"]
            best = f"{s['best_lap_ms'] / 1000:.3f}" if s.get("best_lap_ms") is not None else "-"
            gap = f"+{e['gap_to_leader_ms'] / 1000:.3f}" if e.get("gap_to_leader_ms") else ""
            lines.append(f"  {e['rank']:>3}  {e['username']:<18} {best:>10} "
                         f"{s.get('valid_laps', 0)}/{s.get('total_laps', 0):<4} {gap:>9}")
    lines.append(f"\n  races {summary['races']} · laps {summary['laps']} · resets {summary['resets']} · "
                 f"time {summary['seconds']} s")
    lines.append(f"  laps in the cars' logs {summary['car_laps']} · lost laps {summary['lost_laps']} · "
                 f"doubled laps {summary['doubled_laps']} · leaderboard matches the cars' logs: "
                 f"{'yes' if summary['leaderboard_matches_car_logs'] else 'NO'}")
    if summary.get("timer_laps"):
        lines.append(f"  laps timed by the lap timer {summary['timer_laps']} (equal to the cars' own times "
                     f"within {TIMER_TOLERANCE_MS} ms plus any lateness of the mock pin's pulses)")
    for race in summary.get("deepracer") or []:
        laps = ", ".join(f"{ms / 1000:.3f}" for ms in race["laps_ms"])
        lines.append(f"  DeepRacer race {race['race_id']} ({race['racer']}): laps {laps} s from "
                     f"{'/'.join(race['sources']) or 'nothing'}; stand-in's simulator laps "
                     f"{', '.join(f'{ms / 1000:.3f}' for ms in race['standin_laps_ms'])} s")
    for name, m in summary["mismatches"].items():
        lines.append(f"    mismatch {name}: car logs {m['car_logs']} ms, leaderboard {m['leaderboard']} ms")
    return "\n".join(lines)
