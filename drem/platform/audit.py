"""The audit log of privileged actions (race edits, role changes, deletions, tokens).

Every feature package records its privileged changes here with :func:`record_audit`;
the admin pages read them with :func:`list_audit`. The table is ``audit_log``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db


class AuditEntry(db.Model):
    """One privileged action: who did what to which object, and the details.

    ``actor_name`` keeps the username as it was, so an entry still reads right after
    the user is renamed or deleted (``actor_id`` then becomes NULL).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)

    def to_dict(self) -> dict:
        """JSON shape: ``{id, at (ISO 8601 UTC), actor (username|None), action, target_type,
        target_id (str|None), details}``."""
        return {
            "id": self.id, "at": self.at.isoformat(), "actor": self.actor_name,
            "action": self.action, "target_type": self.target_type,
            "target_id": self.target_id, "details": self.details,
        }


def record_audit(actor, action: str, target_type: str, target_id=None, **details) -> AuditEntry:
    """Add an audit entry and flush (the caller's request commits it).

    ``actor`` is a User (anything with ``id`` and ``username``) or None for the system
    (a car activating itself). ``action`` is ``"<area>.<verb>"`` (e.g. ``"car.revoke"``);
    ``target_id`` is stored as text. ``details`` must be JSON-serialisable (ids, names,
    before/after values).
    """
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None), actor_name=getattr(actor, "username", None),
        action=action, target_type=target_type,
        target_id=None if target_id is None else str(target_id), details=details,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def list_audit(page: int = 1, per_page: int = 50, action: str | None = None):
    """Newest-first page of audit entries, optionally of one ``action``.

    Returns a Flask-SQLAlchemy ``Pagination`` (``items``, ``page``, ``pages``, ``total``);
    a page past the end is empty, not an error.
    """
    query = db.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def audit_actions() -> list[str]:
    """The distinct ``action`` names in the audit log, sorted (the audit page's filter)."""
    return list(db.session.scalars(db.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
