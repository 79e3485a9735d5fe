"""Lap-timer devices: registration with a device token, and token checks."""

from __future__ import annotations

import hashlib
import secrets

from drem.admin.service import record_audit
from drem.platform.db_types import utcnow
from drem.platform.errors import NotFound, ServiceError
from drem.platform.extensions import db
from drem.timekeeper.models import TimerDevice

TOKEN_PREFIX = "timer_"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_timer(actor, track_id: int, name: str) -> tuple[TimerDevice, str]:
    """Register a lap timer for a track; returns (device, plain token shown once). Audited."""
    from drem.events.service import get_track

    track = get_track(track_id)
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise ServiceError("a timer name has 1-60 characters", "name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = TimerDevice(name=name, track_id=track.id, token_hash=_sha(plain))
    db.session.add(device)
    db.session.flush()
    record_audit(actor, "timer.create", "timer", device.id, track_id=track.id, name=name)
    return device, plain


def timer_for_token(plain: str | None) -> TimerDevice | None:
    """The live timer holding this token, or None."""
    if not plain or not plain.startswith(TOKEN_PREFIX):
        return None
    device = db.session.scalar(db.select(TimerDevice).where(TimerDevice.token_hash == _sha(plain)))
    if device is None or device.revoked_at is not None:
        return None
    device.last_seen_at = utcnow()
    return device


def revoke_timer(actor, timer_id: int) -> TimerDevice:
    """Revoke a timer's token; audited."""
    device = db.session.get(TimerDevice, timer_id)
    if device is None:
        raise NotFound("no such timer")
    device.revoked_at = device.revoked_at or utcnow()
    record_audit(actor, "timer.revoke", "timer", device.id)
    db.session.flush()
    return device


def list_timers(track_id: int | None = None) -> list[TimerDevice]:
    """Timers, optionally of one track."""
    query = db.select(TimerDevice).order_by(TimerDevice.id)
    if track_id is not None:
        query = query.where(TimerDevice.track_id == track_id)
    return list(db.session.scalars(query))
