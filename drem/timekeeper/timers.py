"""Lap-timer devices: registration with a device token, token checks, revocation.

A timer authenticates with ``Authorization: Bearer timer_…`` (drem.platform.tokens);
only the token's sha256 is stored, and a revoked token is never found again.
"""

from __future__ import annotations

from drem.events.service import get_track
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.errors import NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.tokens import find_by_token, new_token
from drem.timekeeper.models import TimerDevice

TOKEN_PREFIX = "timer_"


def create_timer(actor, track_id: int, name: str) -> tuple[TimerDevice, str]:
    """Register a lap timer for a track; returns (device, plain token shown once). Audited.

    Raises NotFound for an unknown track and ServiceError for a name that is not 1-60
    characters.
    """
    track = get_track(track_id)
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise ServiceError("a timer name has 1-60 characters", "name")
    plain, hashed = new_token(TOKEN_PREFIX)
    device = TimerDevice(name=name, track_id=track.id, token_hash=hashed)
    db.session.add(device)
    db.session.flush()
    record_audit(actor, "timer.create", "timer", device.id, track_id=track.id, name=name)
    return device, plain


def timer_for_token(plain: str | None) -> TimerDevice | None:
    """The live timer holding this token, or None (unknown or revoked); marks it seen now."""
    device = find_by_token(TimerDevice, TimerDevice.token_hash, plain, TOKEN_PREFIX,
                           revoked_column=TimerDevice.revoked_at)
    if device is not None:
        device.last_seen_at = utcnow()
    return device


def revoke_timer(actor, timer_id: int) -> TimerDevice:
    """Revoke a timer's token: every later crossing it reports is refused ("invalid timer token").

    Idempotent: revoking a revoked timer keeps the first time and writes no second audit
    entry. Audited (``timer.revoke``). Raises NotFound for an unknown timer.
    """
    device = db.session.get(TimerDevice, timer_id)
    if device is None:
        raise NotFound("no such timer")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        record_audit(actor, "timer.revoke", "timer", device.id, track_id=device.track_id, name=device.name)
    db.session.flush()
    return device


def list_timers(track_id: int | None = None) -> list[TimerDevice]:
    """Timers by id, optionally of one track."""
    query = db.select(TimerDevice).order_by(TimerDevice.id)
    if track_id is not None:
        query = query.where(TimerDevice.track_id == track_id)
    return list(db.session.scalars(query))
