"""drem.platform.inputs: the one reader of whole numbers, ids, text and flags from
untrusted input, and what the app answers for ids too large for the database."""

from __future__ import annotations

import pytest

from drem.platform.errors import ServiceError
from drem.platform.inputs import (
    MAX_ID,
    flag,
    id_arg,
    int_arg,
    record_id,
    record_ids,
    text,
    whole_number,
)


def _refused(call, field: str) -> str:
    with pytest.raises(ServiceError) as info:
        call()
    assert info.value.field == field
    return info.value.message


def test_a_bool_is_not_a_whole_number():
    assert "whole number" in _refused(lambda: whole_number({"n": True}, "n"), "n")
    assert "whole number" in _refused(lambda: whole_number({"n": False}, "n", required=False), "n")
    assert "not one" in _refused(lambda: record_ids({"ids": [1, True]}, "ids"), "ids")


def test_numbers_sent_as_text_only_where_a_person_types_them():
    assert whole_number({"n": "12"}, "n") == 12
    assert whole_number({"n": " 7 "}, "n") == 7
    assert whole_number({"n": 3.0}, "n") == 3
    assert "whole number" in _refused(lambda: whole_number({"n": "12"}, "n", strict=True), "n")
    assert "whole number" in _refused(lambda: whole_number({"n": 3.0}, "n", strict=True), "n")
    assert whole_number({"n": 12}, "n", strict=True) == 12
    for bad in ("12.5", "twelve", 2.5, [1], {"n": 1}, "1e3"):
        assert "whole number" in _refused(lambda bad=bad: whole_number({"n": bad}, "n"), "n"), bad


def test_missing_values_and_defaults():
    assert "is required" in _refused(lambda: whole_number({}, "n"), "n")
    assert "is required" in _refused(lambda: whole_number({"n": ""}, "n"), "n")
    assert whole_number({"n": None}, "n", required=False, default=5) == 5
    assert record_id({}, "track_id", required=False) is None
    assert record_ids({}, "ids") == []
    assert text({"name": "   "}, "name", default="x") == "x"
    assert "is required" in _refused(lambda: text({}, "name", required=True), "name")


def test_ranges():
    assert whole_number({"n": 10}, "n", 1, 10) == 10
    assert "between 1 and 10, got 11" in _refused(lambda: whole_number({"n": 11}, "n", 1, 10), "n")
    assert "between 0 and" in _refused(lambda: whole_number({"n": -1}, "n"), "n")
    assert "between 1 and" in _refused(lambda: record_id({"id": 0}, "id"), "id")
    assert record_id({"id": MAX_ID}, "id") == MAX_ID
    assert "between 1 and" in _refused(lambda: record_id({"id": MAX_ID + 1}, "id"), "id")
    assert "between 1 and" in _refused(lambda: record_id({"id": 10**20}, "id"), "id")
    assert "whole number" in _refused(lambda: record_id({"id": "9" * 25}, "id"), "id")
    assert "more than 3" in _refused(lambda: record_ids({"ids": [1, 2, 3, 4]}, "ids", max_items=3), "ids")
    assert "must be a list" in _refused(lambda: record_ids({"ids": "1,2"}, "ids"), "ids")
    assert record_ids({"ids": [3, "5"]}, "ids") == [3, 5]


def test_text_and_flags():
    assert text({"name": "  Blue  "}, "name") == "Blue"
    assert "1-5 characters" in _refused(lambda: text({"name": "toolong"}, "name", 1, 5), "name")
    assert "must be text" in _refused(lambda: text({"name": 12}, "name"), "name")
    assert [flag({"f": v}, "f") for v in (True, 1, "on", "YES", "true")] == [True] * 5
    assert [flag({"f": v}, "f") for v in (False, 0, "off", "no", "")] == [False] * 5
    assert flag({}, "f", default=True) is True
    assert "true or false" in _refused(lambda: flag({"f": "maybe"}, "f"), "f")
    assert "true or false" in _refused(lambda: flag({"f": 2}, "f"), "f")


def test_query_string_readers(app):
    with app.test_request_context("/?page=3&big=99999&bad=x&fleet_id=4&neg=-5"):
        assert int_arg("page", 1) == 3
        assert int_arg("big", 1, 1, 500) == 500
        assert int_arg("neg", 1, 1, 500) == 1
        assert int_arg("bad", 7) == 7
        assert int_arg("absent", 9) == 9
        assert id_arg("fleet_id") == 4
        assert id_arg("absent") is None
    with app.test_request_context("/?fleet_id=abc"):
        assert "whole number" in _refused(lambda: id_arg("fleet_id"), "fleet_id")


HUGE = 10**20


def test_huge_ids_answer_400_or_404_never_500(client, factory):
    headers = factory.headers("admin")
    for url in (f"/api/fleet/cars/{HUGE}", f"/api/fleet/cars/{MAX_ID + 1}", f"/api/models/{HUGE}",
                f"/api/fleet/commands/{HUGE}", f"/api/fleet/cars/{HUGE}/laps"):
        assert client.get(url, headers=headers).status_code == 404, url
    for url in (f"/api/fleet/cars?fleet_id={HUGE}", f"/api/models?owner_id={HUGE}",
                f"/api/fleet/commands?car_id={HUGE}"):
        resp = client.get(url, headers=headers)
        assert resp.status_code in (400, 404) and resp.get_json()["error"], url
    for url, body in (("/api/fleet/fleets", {"name": "Blue", "track_id": HUGE}),
                      ("/api/fleet/activation-codes", {"hostname": "car-1", "fleet_id": HUGE}),
                      ("/api/fleet/commands", {"car_ids": [HUGE], "type": "stop_driving"}),
                      ("/api/fleet/commands", {"car_ids": [True], "type": "stop_driving"})):
        resp = client.post(url, json=body, headers=headers)
        assert resp.status_code == 400, (url, body, resp.get_json())
        assert resp.get_json()["field"] in ("track_id", "fleet_id", "car_ids"), resp.get_json()
    resp = client.patch(f"/api/users/{HUGE}", json={"role": "racer"}, headers=headers)
    assert resp.status_code == 404
