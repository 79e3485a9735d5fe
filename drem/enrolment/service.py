"""Enrol a racer by name: find or create the racer account, then enrol them in an event.

One rule for the desk, the CSV import and the walk-up form (docs/operations.md, "At the
registration desk"):

- a new name creates a racer account (country required) and enrols it;
- a name that belongs to a racer enrols that racer (never a second account), unless the
  country or e-mail given differs from the account's: then it is another person and the
  name is refused as taken;
- a name that belongs to a staff account is refused.

Services flush and never commit; the request commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from drem.auth import service as accounts
from drem.auth.models import User
from drem.events.models import Event, EventRacer
from drem.events.service import register_racer
from drem.platform.countries import check_country
from drem.platform.errors import Conflict
from drem.platform.extensions import db
from drem.platform.permissions import RACER, allowed


@dataclass
class Enrolment:
    """What :func:`enrol_by_name` did: the racer, their registration, whether the account
    was made now (``created``) and whether they were enrolled already (nothing written)."""

    racer: User
    registration: EventRacer
    created: bool
    already_enrolled: bool

    def to_dict(self) -> dict:
        """JSON shape: ``{"racer": user, "registration": registration, "created", "already_enrolled"}``."""
        return {"racer": self.racer.to_dict(), "registration": self.registration.to_dict(),
                "created": self.created, "already_enrolled": self.already_enrolled}


def match_existing(username: str, country_code: str | None, email: str | None) -> User | None:
    """The racer account a desk entry names, or None when the name is free.

    ``country_code`` must be checked already (ISO code or None). Raises Conflict (field
    ``username``) when the name belongs to a staff account, or to a racer whose stored
    country or e-mail differs from the one given (another person with the same name).
    """
    user = accounts.find_user(username)
    if user is None:
        return None
    if user.role != RACER:
        raise Conflict(f"the name {user.username!r} belongs to a staff account; choose another name", "username")
    if country_code and user.country_code and user.country_code != country_code:
        raise Conflict(f"the name {user.username!r} is taken by a different racer (country "
                       f"{user.country_code}); choose another name", "username")
    if email and user.email and user.email.lower() != email.strip().lower():
        raise Conflict(f"the name {user.username!r} is taken by a different racer (another e-mail); "
                       "choose another name", "username")
    return user


def enrol_by_name(actor: User, event: Event, username: str, country_code: str | None,
                  email: str | None = None) -> Enrolment:
    """Find or create the racer ``username`` and enrol them in ``event`` (audited by
    :func:`drem.events.service.register_racer`; a new account by ``user.create``).

    ``country_code`` is an ISO 3166-1 alpha-2 code, required for a new racer. Raises
    ServiceError for a bad name, country or e-mail, Conflict for a name taken by someone
    else (:func:`match_existing`) or a closed event.
    """
    username = accounts.check_username(username)
    country_code = check_country(country_code)
    racer = match_existing(username, country_code, email)
    created = racer is None
    if racer is None:
        racer = accounts.create_user(username, None, email=email, country_code=country_code, actor=actor,
                                     country_required=True)
    already = db.session.scalar(db.select(EventRacer.id).filter_by(event_id=event.id, user_id=racer.id))
    registration = register_racer(event, racer, actor)
    return Enrolment(racer, registration, created, already is not None)


def sign_in_code_for_slip(actor: User, racer: User, ttl: timedelta) -> str | None:
    """A new one-time sign-in code for ``racer``'s slip (``XXXX-XXXX``), or None when the
    racer has chosen a password and ``actor`` is not an admin (they sign in with it;
    desk staff cannot take over a secured account)."""
    if racer.password_hash and not allowed(actor, "users.manage"):
        return None
    return accounts.create_sign_in_code(racer, actor, ttl)
