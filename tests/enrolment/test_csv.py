"""Bulk enrolment from CSV: per-row errors in the preview, existing racers, all-or-nothing
import, file limits."""

from __future__ import annotations

import pytest

from drem.auth.models import User
from drem.enrolment import csv_import
from drem.enrolment.csv_import import MAX_CSV_BYTES, MAX_CSV_ROWS, import_csv, preview_csv
from drem.events import service as events
from drem.events.models import EventRacer
from drem.platform.errors import Conflict, ServiceError
from drem.platform.extensions import db
from tests.enrolment.conftest import audits, count, enrolled_names


def _actor_event(desk, event):
    return db.session.get(User, desk["id"]), events.get_event(event["id"])


def test_preview_reports_each_bad_row_and_writes_nothing(ctx, factory, desk, event):
    factory.user("operator", username="staffer")
    factory.user("racer", username="Known", country_code="FR")
    factory.user("racer", username="Other", country_code="JP")
    _, ev = _actor_event(desk, event)
    users_before = count(User)
    rows = preview_csv(ev, "\ufeffName,Country,Email\n"
                           "Ann,DE,ann@example.org\n"
                           ",DE,\n"
                           "Ben,Narnia,\n"
                           "ann,FR,\n"
                           "staffer,DE,\n"
                           "Other,DE,\n"
                           "Known,france,\n"
                           "Cat,United Kingdom,not-an-email\n"
                           "Dan Space,DE,\n"
                           "\n"
                           "Eli,deu,\n")
    got = {r.line: (r.error or r.note) for r in rows}
    assert got == {
        2: "new racer",
        3: "the name is empty",
        4: "unknown country 'Narnia': use an ISO 3166-1 code such as DE or an English country name",
        5: "the name 'ann' is already on line 2",
        6: "the name 'staffer' belongs to a staff account; choose another name",
        7: "the name 'Other' is taken by a different racer (country JP); choose another name",
        8: "existing racer: will be enrolled",
        9: "that e-mail address does not look right",
        10: "username must be 2-20 characters: letters, digits, '.' or '_'",
        12: "new racer",
    }
    assert [r.country_code for r in rows if r.line in (8, 12)] == ["FR", "DE"]
    assert count(User) == users_before and count(EventRacer) == 0


def test_import_enrols_everyone_and_reuses_existing_racers(ctx, factory, desk, event):
    factory.user("racer", username="Known", country_code="FR")
    actor, ev = _actor_event(desk, event)
    result = import_csv(actor, ev, "name;country\nAnn;Germany\nKnown;FR\nBo;se\n")
    db.session.commit()
    assert [(e.racer.username, e.created) for e in result] == [("Ann", True), ("Known", False), ("Bo", True)]
    assert enrolled_names(ev.id) == ["Ann", "Bo", "Known"]
    assert len(audits("event.add_racer")) == 3
    # the same file again: all enrolled already, nothing new
    again = import_csv(actor, ev, "name;country\nAnn;Germany\nKnown;FR\nBo;se\n")
    assert all(e.already_enrolled and not e.created for e in again)
    assert {r.note for r in preview_csv(ev, "name,country\nAnn,DE\n")} == {"existing racer, already enrolled"}


def test_import_with_a_bad_row_writes_nothing(ctx, desk, event):
    actor, ev = _actor_event(desk, event)
    with pytest.raises(ServiceError, match=r"1 row\(s\) have errors \(first: line 3: unknown country"):
        import_csv(actor, ev, "name,country\nAnn,DE\nBen,Atlantis\nCy,FR\n")
    db.session.rollback()
    assert count(EventRacer) == 0 and enrolled_names(ev.id) == []
    assert {u.username for u in db.session.scalars(db.select(User))}.isdisjoint({"Ann", "Cy"})


def test_closed_event_refuses_the_file(ctx, desk, event):
    actor, ev = _actor_event(desk, event)
    ev.enrolment_open = False
    with pytest.raises(Conflict, match="closed"):
        preview_csv(ev, "name,country\nAnn,DE\n")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"name,email\nAnn,a@b.de\n", "must name the columns name and country"),
    (b"name,country\n\n", "a header but no racers"),
    ("name,country\nJos\u00e9,ES\n".encode("latin-1"), "not UTF-8"),
    (b"name,country\n" + b"Ann,DE\n" * (MAX_CSV_BYTES // 7 + 1), "larger than 64 KiB"),
    (b"name,country\n" + b"".join(b"r%d,DE\n" % i for i in range(MAX_CSV_ROWS + 1)), "more than 300 racers"),
])
def test_file_limits_and_format(ctx, desk, event, data, message):
    _, ev = _actor_event(desk, event)
    with pytest.raises(ServiceError, match=message):
        csv_import.read_csv(data)
    with pytest.raises(ServiceError, match=message):
        preview_csv(ev, data)
    assert count(EventRacer) == 0
