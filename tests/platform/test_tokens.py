"""drem.platform.tokens (token and code hashing, lookup, bearer headers), the three
kinds of token that use it, timer revocation, and drem.platform.audit."""

from __future__ import annotations

import re

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from drem.auth.models import ApiToken, User
from drem.auth.service import user_for_token
from drem.events.models import Track
from drem.fleet.models import Car
from drem.fleet.service import car_for_token
from drem.platform.audit import AuditEntry, list_audit, record_audit
from drem.platform.db_types import utcnow
from drem.platform.errors import NotFound
from drem.platform.extensions import db
from drem.platform.tokens import (
    CODE_ALPHABET,
    bearer_token,
    code_hash,
    find_by_token,
    new_code,
    new_token,
    normalise_code,
    token_hash,
)
from drem.timekeeper.timers import create_timer, revoke_timer, timer_for_token


def _request(headers: dict) -> Request:
    return Request(EnvironBuilder(headers=headers).get_environ())


def test_new_token_has_its_prefix_and_only_the_hash_is_kept():
    plain, hashed = new_token("car_")
    assert plain.startswith("car_") and len(plain) == 4 + 43
    assert hashed == token_hash(plain) and re.fullmatch(r"[0-9a-f]{64}", hashed) and plain not in hashed
    assert new_token("car_")[0] != plain


def test_codes_are_printed_in_two_halves_and_match_however_typed():
    printed, hashed = new_code()
    assert re.fullmatch(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", printed)
    for typed in (printed, printed.lower(), printed.replace("-", " "), f"  {printed.replace('-', '')} "):
        assert code_hash(typed) == hashed, typed
    assert normalise_code("ab cd-ef gh") == "ABCDEFGH" and normalise_code(None) == ""
    assert not set("01OIL") & set(CODE_ALPHABET)


def test_bearer_token_header():
    assert bearer_token(_request({"Authorization": "Bearer drem_abc "})) == "drem_abc"
    assert bearer_token(_request({"Authorization": "Bearer   "})) is None
    assert bearer_token(_request({"Authorization": "Basic dXNlcjpwdw=="})) is None
    assert bearer_token(_request({})) is None


def test_find_by_token_checks_prefix_hash_and_revocation(ctx, factory):
    user = factory.user("operator")
    plain = factory.token(user)
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == user["id"]))
    found = find_by_token(ApiToken, ApiToken.token_hash, plain, "drem_", revoked_column=ApiToken.revoked_at)
    assert found is not None and found.id == token.id
    assert user_for_token(plain).id == user["id"]
    for wrong in (None, "", "drem_", plain.replace("drem_", "car_"), plain + "x", 12):
        assert find_by_token(ApiToken, ApiToken.token_hash, wrong, "drem_") is None, wrong
    token.revoked_at = utcnow()
    db.session.flush()
    assert find_by_token(ApiToken, ApiToken.token_hash, plain, "drem_", revoked_column=ApiToken.revoked_at) is None
    assert find_by_token(ApiToken, ApiToken.token_hash, plain, "drem_") is not None  # no revocation asked
    assert user_for_token(plain) is None


def test_car_tokens_use_the_same_rule(ctx):
    plain, hashed = new_token("car_")
    car = Car(hostname="car-9", token_hash=hashed, state="idle")
    db.session.add(car)
    db.session.flush()
    assert car_for_token(plain) is car
    assert car_for_token(plain.replace("car_", "timer_")) is None
    car.token_revoked_at = utcnow()
    assert car_for_token(plain) is None


@pytest.fixture
def track_id(factory) -> int:
    return factory.event(tracks=1)["tracks"][0]["id"]


def test_a_revoked_timer_token_is_no_longer_found(ctx, factory, track_id):
    actor = db.session.get(User, factory.user("operator")["id"])
    device, plain = create_timer(actor, track_id, "finish line")
    db.session.commit()
    assert plain.startswith("timer_") and timer_for_token(plain) is device
    assert device.last_seen_at is not None  # a found timer is marked seen

    revoked = revoke_timer(actor, device.id)
    db.session.commit()
    assert revoked is device and device.revoked_at is not None and device.to_dict()["revoked"] is True
    assert timer_for_token(plain) is None
    first = device.revoked_at
    revoke_timer(actor, device.id)  # idempotent: same time, one audit entry
    db.session.commit()
    assert device.revoked_at == first
    entries = list_audit(action="timer.revoke").items
    assert [(e.actor_name, e.target_type, e.target_id) for e in entries] == [(actor.username, "timer", str(device.id))]
    assert entries[0].details == {"track_id": track_id, "name": "finish line"}
    with pytest.raises(NotFound):
        revoke_timer(actor, 987654)


def test_timer_of_an_unknown_track_is_refused(ctx, factory):
    actor = db.session.get(User, factory.user("operator")["id"])
    with pytest.raises(NotFound):
        create_timer(actor, 987654, "finish line")
    assert db.session.scalar(db.select(db.func.count()).select_from(Track)) == 0


def test_audit_entries_newest_first_filtered_and_paged(ctx, factory):
    actor = db.session.get(User, factory.user("admin")["id"])
    for i in range(3):
        record_audit(actor, "thing.make", "thing", i, n=i)
    system = record_audit(None, "car.activate", "car", 7)
    db.session.commit()
    assert (system.actor_id, system.actor_name, system.target_id, system.details) == (None, None, "7", {})
    page = list_audit(page=1, per_page=2, action="thing.make")
    assert page.total == 3 and page.pages == 2
    assert [e.details["n"] for e in page.items] == [2, 1]
    assert list_audit(page=5, per_page=2).items == []
    shape = page.items[0].to_dict()
    assert set(shape) == {"id", "at", "actor", "action", "target_type", "target_id", "details"}
    assert shape["actor"] == actor.username and shape["target_id"] == "2"
    # the entry outlives its actor (actor_id becomes NULL, the name stays)
    db.session.delete(actor)
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(AuditEntry, page.items[0].id)
    assert kept.actor_id is None and kept.actor_name == shape["actor"]
