"""Fixtures of the enrolment tests: a staff actor, an open event, helpers for rows."""

from __future__ import annotations

import pytest

from drem.auth.models import User
from drem.events.models import EventRacer
from drem.platform.audit import AuditEntry
from drem.platform.extensions import db


@pytest.fixture
def desk(factory) -> dict:
    """A registration-desk user."""
    return factory.user("registration")


@pytest.fixture
def event(factory) -> dict:
    """An event open for enrolment, with one track."""
    return factory.event()


def enrolled_names(event_id: int) -> list[str]:
    """Usernames enrolled in the event, sorted."""
    return sorted(db.session.scalars(db.select(User.username).join(EventRacer, EventRacer.user_id == User.id)
                                     .where(EventRacer.event_id == event_id)))


def audits(action: str) -> list[AuditEntry]:
    """Audit entries of ``action``, oldest first."""
    return list(db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def count(model) -> int:
    """Rows in ``model``'s table."""
    return db.session.scalar(db.select(db.func.count()).select_from(model))

