"""Penalties and disqualification in each ranking method (docs/ranking.md "Penalties and
disqualification"), with hand-computed expectations, and the leaderboard version bump a
penalty makes. Laps of a race started at ``start`` are recorded at ``start + 10 * n`` s."""

from __future__ import annotations

import io

from pypdf import PdfReader

from drem.leaderboard.ranking import RankingState, rank
from drem.leaderboard.ranking_records import LapInput, RaceInput, RankingConfig


def run(race_id, racer_id, *laps, start=0.0, penalty_ms=0, disqualified=False) -> RaceInput:
    """``laps``: lap times in ms, or ``(ms, lap penalty ms)``."""
    out = []
    for n, spec in enumerate(laps, start=1):
        ms, pen = spec if isinstance(spec, tuple) else (spec, 0)
        out.append(LapInput(f"{race_id}-{n}", race_id, racer_id, n, ms, 0, False, start + 10 * n, pen))
    return RaceInput(race_id, racer_id, "T1", start, out, penalty_ms=penalty_ms, disqualified=disqualified)


def values(entries) -> list[tuple]:
    return [(e.racer_id, e.ranking_value_ms) for e in entries]


def test_best_lap_adds_the_lap_penalty_and_the_run_penalty_to_each_lap():
    config = RankingConfig("best_lap")
    # ann: 8.0 s + 2 s cone = 10.0, 9.5 s clean -> best 9.5; bo: 9.0 and 9.2 with a run
    # penalty of 1 s -> 10.0 and 10.2 -> best 10.0 (of which 1 s penalty); cy: 9.8 clean
    entries = rank([run(1, "ann", (8000, 2000), 9500), run(2, "bo", 9000, 9200, penalty_ms=1000),
                    run(3, "cy", 9800, start=100)], config)
    assert values(entries) == [("ann", 9500), ("cy", 9800), ("bo", 10000)]
    bo = entries[2].summary
    assert (bo.best_lap_ms, bo.best_lap_penalty_ms, bo.penalty_ms) == (10000, 1000, 1000)
    ann = entries[0].summary
    assert (ann.best_lap_penalty_ms, ann.penalty_ms, ann.best_lap_number) == (0, 2000, 2)


def test_best_average_adds_penalties_inside_the_window():
    config = RankingConfig("best_average", averaging_window=3)
    # ann: 9.0, 9.0 (+3 s), 9.0 -> (9 + 12 + 9) / 3 = 10.0; bo: 9.5 x3 + run penalty 0.3 s on
    # each lap -> 9.8; cy: 9.9 x3 clean -> 9.9
    entries = rank([run(1, "ann", 9000, (9000, 3000), 9000), run(2, "bo", 9500, 9500, 9500, penalty_ms=300),
                    run(3, "cy", 9900, 9900, 9900)], config)
    assert values(entries) == [("bo", 9800.0), ("cy", 9900.0), ("ann", 10000.0)]
    assert entries[2].summary.best_lap_ms == 9000  # a lap without the penalty


def test_total_time_adds_lap_penalties_and_the_run_penalty_once():
    config = RankingConfig("total_time", lap_target=3)
    # ann: 9 + 9 (+2) + 9 = 29.0 s; bo: 9.5 x3 = 28.5 + run penalty 1 s once = 29.5 s;
    # cy: 9.7 x3 = 29.1 s clean
    entries = rank([run(1, "ann", 9000, (9000, 2000), 9000), run(2, "bo", 9500, 9500, 9500, penalty_ms=1000),
                    run(3, "cy", 9700, 9700, 9700)], config)
    assert values(entries) == [("ann", 29000), ("cy", 29100), ("bo", 29500)]
    assert entries[2].summary.total_time_ms == 29500 and entries[2].summary.penalty_ms == 1000
    # bo's best lap (the tie-break) is 9.5 s: the run's penalty goes to the total only
    assert entries[2].summary.best_lap_ms == 9500


def test_a_disqualified_run_is_a_run_used_with_no_result_in_each_method():
    for config in (RankingConfig("best_lap"), RankingConfig("best_average", averaging_window=3),
                   RankingConfig("total_time", lap_target=3)):
        # ann's fast run is disqualified, her slow one counts; bo only has a disqualified run
        entries = rank([run(1, "ann", 8000, 8000, 8000, disqualified=True, penalty_ms=500),
                        run(2, "ann", 9900, 9900, 9900, start=100),
                        run(3, "bo", 7000, 7000, 7000, disqualified=True), run(4, "cy", 9800, 9800, 9800)], config)
        assert [e.racer_id for e in entries] == ["cy", "ann", "bo"], config
        ann, bo = entries[1].summary, entries[2].summary
        assert (ann.runs, ann.disqualified_runs, ann.valid_laps, ann.total_laps, ann.best_lap_ms) == (
            2, 1, 3, 6, 9900), config
        assert ann.penalty_ms == 0  # the disqualified run's penalty no longer matters
        assert entries[2].ranking_value_ms is None and (bo.runs, bo.disqualified_runs, bo.valid_laps) == (1, 1, 0)


def test_incremental_state_keeps_the_run_penalty_for_later_laps():
    config = RankingConfig("best_lap")
    state = RankingState(config)
    state.rebuild([run(1, "ann", 9000, penalty_ms=1000), run(2, "bo", 9800)])
    assert values(state.entries()) == [("bo", 9800), ("ann", 10000)]
    state.add_lap(LapInput("1-2", 1, "ann", 2, 8500, 0, False, 20.0))  # 8.5 + 1 = 9.5 s
    assert values(state.entries()) == [("ann", 9500), ("bo", 9800)]
    state.add_lap(LapInput("1-2", 1, "ann", 2, 8500, 0, False, 20.0, 1000))  # a cone on it: 10.5 s
    assert values(state.entries()) == [("bo", 9800), ("ann", 10000)]


def test_a_penalty_or_disqualification_bumps_the_leaderboard_version(app, factory):
    from drem.auth.models import User
    from drem.events import race_admin
    from drem.events.models import Event, Race, Track
    from drem.platform.extensions import db
    from tests.leaderboard.builders import Races

    event = factory.event()
    track_id = event["tracks"][0]["id"]
    racer = factory.user("racer")
    admin = factory.user("admin")
    rid = Races(app).race(event["id"], track_id, racer["id"], laps=[9000, 9100])["id"]

    def versions():
        return (db.session.get(Track, track_id).leaderboard_version,
                db.session.get(Event, event["id"]).leaderboard_version)

    with app.app_context():
        actor = db.session.get(User, admin["id"])
        before = versions()
        race_admin.penalise_race(actor, db.session.get(Race, rid), {"penalty_ms": 2000, "penalty_reason": "cone"})
        db.session.commit()
        assert versions() == (before[0] + 1, before[1] + 1)
        race_admin.edit_lap(actor, db.session.get(Race, rid).laps[0], {"penalty_ms": 500, "penalty_reason": "line"})
        db.session.commit()
        race_admin.disqualify_race(actor, db.session.get(Race, rid), {"disqualified": True, "reason": "hand"})
        db.session.commit()
        assert versions() == (before[0] + 3, before[1] + 3)


def test_results_show_penalties_and_disqualification_and_survive_export_import(app, client, factory):
    from drem.auth.models import User
    from drem.events import race_admin
    from drem.events.models import Race
    from drem.platform.extensions import db
    from tests.leaderboard.builders import Races

    event = factory.event()
    track_id = event["tracks"][0]["id"]
    ann, bo = factory.user("racer", "ann_pen"), factory.user("racer", "bo_pen")
    admin = factory.user("admin")
    builder = Races(app)
    fast = builder.race(event["id"], track_id, ann["id"], laps=[9000, 9500])["id"]
    dq = builder.race(event["id"], track_id, bo["id"], laps=[8000])["id"]
    builder.race(event["id"], track_id, bo["id"], laps=[9900])
    with app.app_context():
        actor = db.session.get(User, admin["id"])
        race_admin.edit_lap(actor, db.session.get(Race, fast).laps[0], {"penalty_ms": 2000, "penalty_reason": "cone"})
        race_admin.disqualify_race(actor, db.session.get(Race, dq), {"disqualified": True, "reason": "hand"})
        db.session.commit()
    headers = factory.headers("admin")

    entries = client.get(f"/api/events/{event['id']}/leaderboard?track={track_id}").get_json()["entries"]
    # ann: 9.0 + 2 s = 11.0 and 9.5 -> 9.5 s; bo: 8.0 disqualified, 9.9 counts
    assert [(e["username"], e["ranking_value_ms"], e["summary"]["penalty_ms"], e["summary"]["disqualified_runs"])
            for e in entries] == [("ann_pen", 9500, 2000, 0), ("bo_pen", 9900, 0, 1)]
    racers_csv = client.get(f"/api/events/{event['id']}/racers.csv", headers=headers).get_data(as_text=True)
    assert racers_csv.splitlines()[0].endswith(",penalty_ms,disqualified_runs")
    laps_csv = client.get(f"/api/events/{event['id']}/laps.csv", headers=headers).get_data(as_text=True)
    assert ",2000,cone,0,,false," in laps_csv and ",0,,0,,true,hand" in laps_csv
    page = client.get(f"/events/{event['id']}/races", headers=headers).get_data(as_text=True)
    assert "+2.000 s cone" in page and "disqualified: hand" in page

    pdf = client.get(f"/api/events/{event['id']}/results.pdf", headers=headers)
    assert pdf.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    ann_line = next(x for x in text.splitlines() if "ann_pen" in x)
    bo_line = next(x for x in text.splitlines() if "bo_pen" in x)
    assert "+2.000 s" in ann_line and "DQ 1" in bo_line, text

    doc = client.get(f"/api/events/{event['id']}/export.json", headers=headers).get_json()
    by_racer = {r["racer"]: r for r in doc["races"] if r["laps"] and r["laps"][0]["time_ms"] in (9000, 8000)}
    assert by_racer["ann_pen"]["laps"][0]["penalty_ms"] == 2000 and by_racer["ann_pen"]["laps"][0]["penalty_reason"] == "cone"
    assert by_racer["bo_pen"]["disqualified"] is True and by_racer["bo_pen"]["disqualified_reason"] == "hand"
    resp = client.post("/api/events/import", json=doc, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    new = resp.get_json()["event"]
    again = client.get(f"/api/events/{new['id']}/leaderboard?track={new['tracks'][0]['id']}").get_json()["entries"]
    assert [(e["username"], e["ranking_value_ms"], e["summary"]["penalty_ms"], e["summary"]["disqualified_runs"])
            for e in again] == [("ann_pen", 9500, 2000, 0), ("bo_pen", 9900, 0, 1)]
    doc["races"][0]["penalty_reason"] = 5
    assert client.post("/api/events/import", json=doc, headers=headers).status_code == 400
