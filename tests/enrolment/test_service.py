"""Enrolment services: enrol by name (create or find), the events service's rules (idempotent,
audited, closed event refused) and the country list."""

from __future__ import annotations

import re

import pytest

from drem.auth import service as accounts
from drem.auth.models import User
from drem.enrolment.service import enrol_by_name
from drem.events import service as events
from drem.events.models import EventRacer
from drem.platform.countries import check_country, country_choices, country_label, flag
from drem.platform.errors import Conflict, ServiceError
from drem.platform.extensions import db
from tests.enrolment.conftest import audits, count, enrolled_names


def _rows(app, desk, event):
    return db.session.get(User, desk["id"]), events.get_event(event["id"])


def test_new_racer_is_created_enrolled_and_audited(ctx, desk, event):
    actor, ev = _rows(ctx, desk, event)
    result = enrol_by_name(actor, ev, " Ada_L ", "gb", "ada@example.org")
    db.session.commit()
    assert result.created and not result.already_enrolled
    assert (result.racer.username, result.racer.country_code, result.racer.role) == ("Ada_L", "GB", "racer")
    assert result.racer.password_hash is None and result.registration.colour == "blue"
    assert enrolled_names(ev.id) == ["Ada_L"]
    [entry] = audits("event.add_racer")
    assert (entry.actor_name, entry.target_id, entry.details["racer"]) == (actor.username, str(ev.id), "Ada_L")
    assert [a.details["username"] for a in audits("user.create")] == ["Ada_L"]


def test_enrolment_is_idempotent(ctx, desk, event):
    actor, ev = _rows(ctx, desk, event)
    first = enrol_by_name(actor, ev, "Bo", "SE")
    again = enrol_by_name(actor, ev, "bo", "SE")
    db.session.commit()
    assert again.racer.id == first.racer.id and again.registration.id == first.registration.id
    assert not again.created and again.already_enrolled
    assert count(EventRacer) == 1 and len(audits("event.add_racer")) == 1
    # the events service itself: the same registration, nothing new written or audited
    assert events.register_racer(ev, first.racer, actor).id == first.registration.id
    assert len(audits("event.add_racer")) == 1


def test_existing_racer_is_enrolled_not_duplicated(ctx, factory, desk, event):
    factory.user("racer", username="Cy", country_code="FR")
    actor, ev = _rows(ctx, desk, event)
    result = enrol_by_name(actor, ev, "CY", "FR")
    assert not result.created and not result.already_enrolled and result.racer.username == "Cy"
    assert count(User) == 3  # admin of the event, desk, Cy


@pytest.mark.parametrize(("role", "country", "message"), [
    ("operator", "DE", "belongs to a staff account"),
    ("racer", "JP", "taken by a different racer (country DE)"),
])
def test_name_of_someone_else_is_refused(ctx, factory, desk, event, role, country, message):
    factory.user(role, username="Dee", country_code="DE")
    actor, ev = _rows(ctx, desk, event)
    with pytest.raises(Conflict, match=re.escape(message)) as err:
        enrol_by_name(actor, ev, "dee", country)
    assert err.value.field == "username" and count(EventRacer) == 0


def test_other_email_means_another_racer(ctx, factory, desk, event):
    actor, ev = _rows(ctx, desk, event)
    enrol_by_name(actor, ev, "Eve", "DE", "eve@example.org")
    with pytest.raises(Conflict, match="another e-mail"):
        enrol_by_name(actor, ev, "Eve", "DE", "other@example.org")
    assert not enrol_by_name(actor, ev, "Eve", "DE", "EVE@example.org").created


def test_new_racer_needs_a_known_country(ctx, desk, event):
    actor, ev = _rows(ctx, desk, event)
    for country, message in ((None, "choose a country"), ("", "choose a country"), ("XX", "unknown country"),
                             ("Germany", "unknown country")):
        with pytest.raises(ServiceError, match=message) as err:
            enrol_by_name(actor, ev, "Fay", country)
        assert err.value.field == "country_code"
    assert accounts.find_user("Fay") is None


def test_closed_event_refuses_enrolment_but_keeps_enrolled_racers(ctx, factory, desk, event):
    actor, ev = _rows(ctx, desk, event)
    enrol_by_name(actor, ev, "Gus", "DE")
    events.update_event(actor, ev, {"enrolment_open": False})
    db.session.commit()
    with pytest.raises(Conflict, match="enrolment for .* is closed"):
        enrol_by_name(actor, ev, "Hal", "DE")
    db.session.rollback()  # as the request does: the new account is not kept either
    racer = db.session.get(User, factory.user("racer")["id"])
    with pytest.raises(Conflict, match="closed"):
        events.register_racer(ev, racer)  # the racer's own "Register" too
    assert enrol_by_name(actor, ev, "Gus", "DE").already_enrolled  # already in: no error
    assert enrolled_names(ev.id) == ["Gus"] and accounts.find_user("Hal") is None
    assert events.open_events() == []


def test_self_registration_is_audited_with_the_racer_as_actor(ctx, factory, event):
    racer = db.session.get(User, factory.user("racer")["id"])
    events.register_racer(events.get_event(event["id"]), racer)
    [entry] = audits("event.add_racer")
    assert entry.actor_name == racer.username and entry.details["user_id"] == racer.id


def test_default_event_prefers_today_then_the_next(ctx, factory):
    from datetime import date

    past, today, soon, later = (events.get_event(factory.event(date=d)["id"]) for d in
                                ("2026-01-01", "2026-06-01", "2026-06-03", "2026-07-01"))
    assert events.default_event([past, today, soon, later], date(2026, 6, 1)) is today
    assert events.default_event([past, soon, later], date(2026, 6, 2)) is soon
    assert events.default_event([past], date(2026, 6, 2)) is past
    assert events.default_event([], date(2026, 6, 2)) is None


def test_country_list():
    assert check_country("de") == "DE" and check_country(" NL ") == "NL"
    assert check_country("Germany", names=True) == "DE" and check_country("deu", names=True) == "DE"
    assert check_country("", required=False) is None
    for bad in ("XX", "UK", "D", 12):
        with pytest.raises(ServiceError):
            check_country(bad, names=True)
    choices = dict(country_choices())
    assert len(choices) >= 249 and choices["DE"] == "🇩🇪 Germany" and choices["TW"].endswith("Taiwan")
    assert flag("jp") == "🇯🇵" and country_label("GB") == "🇬🇧 United Kingdom (GB)"
    assert country_label("XX") == "XX" and country_label(None) == ""  # an old stored value still shows


def test_set_country_validates(ctx, factory):
    user = db.session.get(User, factory.user("racer", country_code=None)["id"])
    assert user.country_code is None  # existing users without a country keep working
    assert accounts.set_country(user, "pt").country_code == "PT"
    with pytest.raises(ServiceError, match="unknown country"):
        accounts.set_country(user, "ZZ")
    with pytest.raises(ServiceError, match="choose a country"):
        accounts.set_country(user, "")
