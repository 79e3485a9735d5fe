"""Issue 18: the public leaderboard carried the operator's name and id and the car and model
ids of the live race. Only the display fields go out now."""

from __future__ import annotations

from drem.leaderboard.service import DISPLAY_RACE_FIELDS


def test_public_leaderboard_race_has_only_display_fields(app, client, factory):
    from drem.events.models import Race
    from drem.platform.extensions import db

    event = factory.event()
    track_id = event["tracks"][0]["id"]
    operator = factory.user("operator", username="op_secret")
    racer = factory.user("racer", username="racer_pub")
    with app.app_context():
        db.session.add(Race(event_id=event["id"], track_id=track_id, racer_id=racer["id"], status="running",
                            operator_id=operator["id"], time_limit_ms=180_000, live_track_id=track_id))
        db.session.commit()
    resp = client.get(f"/api/events/{event['id']}/leaderboard", query_string={"track": track_id})
    assert resp.status_code == 200
    [race] = resp.get_json()["races"].values()
    assert set(race) <= DISPLAY_RACE_FIELDS | {"lap_count", "last_lap"}
    assert race["racer"] == {"id": racer["id"], "username": "racer_pub", "country_code": "DE"}
    text = resp.get_data(as_text=True)
    assert "op_secret" not in text and "operator" not in text and "car_id" not in text and "model_id" not in text
