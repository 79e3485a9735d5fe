"""Lap-timer devices: activation with a one-time code, token checks, status, revocation.

A timer authenticates with its token (``timer_…``, drem.platform.tokens): as
``Authorization: Bearer`` on HTTP, in the ``auth`` dict on the ``/timer`` Socket.IO
namespace. Only the token's sha256 is stored, and a revoked token is never found again.
An operator makes a one-time code per track on the timers page; the device trades it
for its token (``POST /api/timer/activate``), as a car does.

A timer is **online** while its socket is connected and its last heartbeat is at most
:data:`OFFLINE_AFTER_S` old. Every change of a timer's status goes, after the commit,
to the timekeeper consoles of its track (``timer_status`` in room ``tk:<track_id>``).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from drem.events.service import get_track
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Forbidden, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.tokens import code_hash, find_by_token, new_code, new_token
from drem.timekeeper.models import TimerActivationCode, TimerDevice, TrackTiming

TOKEN_PREFIX = "timer_"
#: Seconds between a timer's heartbeats (sent to the device at activation and on connect).
HEARTBEAT_INTERVAL_S = 2
#: A timer is offline after this much silence (three missed heartbeats).
OFFLINE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S
_PUSHES = "drem_timer_pushes"


def _check_name(name: str | None) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise ServiceError("a timer name has 1-60 characters", "name")
    return name


def create_timer(actor, track_id: int, name: str) -> tuple[TimerDevice, str]:
    """Register a lap timer for a track; returns (device, plain token shown once). Audited.

    Raises NotFound for an unknown track and ServiceError for a name that is not 1-60
    characters.
    """
    track = get_track(track_id)
    name = _check_name(name)
    plain, hashed = new_token(TOKEN_PREFIX)
    device = TimerDevice(name=name, track_id=track.id, token_hash=hashed)
    db.session.add(device)
    db.session.flush()
    record_audit(actor, "timer.create", "timer", device.id, track_id=track.id, name=name)
    return device, plain


def create_activation_code(actor, track_id: int, name: str) -> tuple[TimerActivationCode, str]:
    """A one-time code that registers one timer for the track under ``name`` (expires after
    ``ACTIVATION_CODE_TTL_MIN``). Returns (row, printed code ``XXXX-XXXX``); only the hash
    is stored. Audited. NotFound for an unknown track, ServiceError for a bad name."""
    track = get_track(track_id)
    name = _check_name(name)
    printed, hashed = new_code()
    ttl = timedelta(minutes=current_app.config["ACTIVATION_CODE_TTL_MIN"])
    row = TimerActivationCode(code_hash=hashed, name=name, track_id=track.id, expires_at=utcnow() + ttl,
                              created_by_id=getattr(actor, "id", None))
    db.session.add(row)
    record_audit(actor, "timer.activation_code", "timer", None, track_id=track.id, name=name)
    db.session.flush()
    return row, printed


def activate_timer(code: str, hostname: str | None, software_version: str | None) -> tuple[TimerDevice, str]:
    """Exchange a one-time code for a new timer of the code's track and its token.

    Raises Forbidden (403) for an unknown, used or expired code; nothing changes then.
    """
    row = db.session.scalar(db.select(TimerActivationCode).where(TimerActivationCode.code_hash == code_hash(code)))
    if row is None:
        raise Forbidden("unknown activation code")
    if row.used_at is not None:
        raise Forbidden("activation code already used")
    if row.expires_at <= utcnow():
        raise Forbidden("activation code expired")
    plain, hashed = new_token(TOKEN_PREFIX)
    device = TimerDevice(name=row.name, track_id=row.track_id, token_hash=hashed,
                         hostname=(hostname or "")[:63] or None, software_version=(software_version or "")[:40] or None)
    db.session.add(device)
    db.session.flush()
    row.used_at, row.timer_id = utcnow(), device.id
    record_audit(None, "timer.activate", "timer", device.id, track_id=row.track_id, name=row.name,
                 hostname=device.hostname)
    db.session.flush()
    push_timer(device)
    return device, plain


def timer_for_token(plain: str | None) -> TimerDevice | None:
    """The live timer holding this token, or None (unknown or revoked); marks it seen now."""
    device = find_by_token(TimerDevice, TimerDevice.token_hash, plain, TOKEN_PREFIX,
                           revoked_column=TimerDevice.revoked_at)
    if device is not None:
        device.last_seen_at = utcnow()
    return device


def live_timer(timer_id: int | None) -> TimerDevice | None:
    """The timer with this id whose token is not revoked, or None."""
    device = db.session.get(TimerDevice, timer_id) if timer_id else None
    return None if device is None or device.revoked_at is not None else device


def get_timer(timer_id: int) -> TimerDevice:
    """The timer with this id (revoked or not); NotFound otherwise."""
    device = db.session.get(TimerDevice, timer_id)
    if device is None:
        raise NotFound("no such timer")
    return device


def revoke_timer(actor, timer_id: int) -> TimerDevice:
    """Revoke a timer's token: every later crossing it reports is refused ("invalid timer token")
    and its socket is disconnected after the commit.

    Idempotent: revoking a revoked timer keeps the first time and writes no second audit
    entry. Audited (``timer.revoke``). Raises NotFound for an unknown timer.
    """
    device = get_timer(timer_id)
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        record_audit(actor, "timer.revoke", "timer", device.id, track_id=device.track_id, name=device.name)
        sid = device.sid
        device.connected, device.sid = False, None
        if sid:
            after_commit(lambda: socketio.server.disconnect(sid, namespace="/timer"))
        push_timer(device)
    db.session.flush()
    return device


def list_timers(track_id: int | None = None, include_revoked: bool = True) -> list[TimerDevice]:
    """Timers by id, optionally of one track and without the revoked ones."""
    query = db.select(TimerDevice).order_by(TimerDevice.id)
    if track_id is not None:
        query = query.where(TimerDevice.track_id == track_id)
    if not include_revoked:
        query = query.where(TimerDevice.revoked_at.is_(None))
    return list(db.session.scalars(query))


def is_online(device: TimerDevice, now=None) -> bool:
    """Connected, not revoked, and heard from within :data:`OFFLINE_AFTER_S`."""
    now = now or utcnow()
    return bool(device.connected and device.revoked_at is None and device.last_seen_at is not None
                and (now - device.last_seen_at).total_seconds() <= OFFLINE_AFTER_S)


def timer_dict(device: TimerDevice, now=None) -> dict:
    """A timer as the timers page and the consoles show it: :meth:`TimerDevice.to_dict` plus
    ``online`` and ``offline_after_s`` (the console turns it offline after that much silence)."""
    return device.to_dict() | {"online": is_online(device, now), "offline_after_s": OFFLINE_AFTER_S}


def track_timing(track_id: int) -> dict:
    """``{"track_id", "first_crossing_starts_race"}`` of a track (default False)."""
    row = db.session.get(TrackTiming, track_id)
    return {"track_id": track_id, "first_crossing_starts_race": bool(row and row.first_crossing_starts_race)}


def set_track_timing(actor, track_id: int, first_crossing_starts_race: bool) -> dict:
    """Choose whether a timer's first crossing starts the track's race (DREM's way) or the
    operator starts it with S. Audited. NotFound for an unknown track."""
    track = get_track(track_id)
    row = db.session.get(TrackTiming, track.id)
    if row is None:
        row = TrackTiming(track_id=track.id)
        db.session.add(row)
    row.first_crossing_starts_race = bool(first_crossing_starts_race)
    record_audit(actor, "track.timing", "track", track.id, first_crossing_starts_race=row.first_crossing_starts_race)
    db.session.flush()
    return track_timing(track.id)


def connected(device: TimerDevice, sid: str, hostname: str | None = None) -> None:
    """The timer's socket connected as ``sid``."""
    device.connected, device.sid, device.last_seen_at = True, sid, utcnow()
    if hostname:
        device.hostname = hostname[:63]
    push_timer(device)


def disconnected(device: TimerDevice, sid: str) -> None:
    """The timer's socket ``sid`` closed (an older socket closing late changes nothing)."""
    if device.sid == sid:
        device.connected, device.sid = False, None
        push_timer(device)


def record_heartbeat(device: TimerDevice, data: dict) -> dict:
    """Take a heartbeat ``{device_time_ms, clock_offset_ms?, round_trip_ms?, sensors?,
    software_version?, hostname?}`` and answer ``{"ok": true, "server_time_ms",
    "heartbeat_interval_s"}``; the device measures its clock offset from the answer
    (docs/timer-protocol.md). Bad optional fields are ignored, never stored."""
    device.last_seen_at = utcnow()
    offset, trip = data.get("clock_offset_ms"), data.get("round_trip_ms")
    if isinstance(offset, int) and not isinstance(offset, bool):
        device.clock_offset_ms = offset
    if isinstance(trip, int) and not isinstance(trip, bool) and 0 <= trip < 600_000:
        device.round_trip_ms = trip
    sensors = data.get("sensors")
    if isinstance(sensors, list) and len(sensors) <= 4 and all(isinstance(s, dict) for s in sensors):
        device.sensors = [{k: s.get(k) for k in ("sensor", "pin", "pull_up", "edge", "bounce_ms")} for s in sensors]
    version = data.get("software_version")
    if isinstance(version, str) and version:
        device.software_version = version[:40]
    push_timer(device)
    return {"ok": True, "server_time_ms": int(utcnow().timestamp() * 1000),
            "heartbeat_interval_s": HEARTBEAT_INTERVAL_S}


def push_timer(device: TimerDevice) -> None:
    """After the commit, send the timer's status (``timer_status``, :func:`timer_dict`) to the
    consoles of its track, once per timer and transaction."""
    session = db.session()
    transaction = session.get_transaction() or session.begin()
    holder = session.info.get(_PUSHES)
    if holder is None or holder[0] is not transaction:
        holder = session.info[_PUSHES] = (transaction, set())
        after_commit(lambda ids=holder[1]: _send_status(ids))
    holder[1].add(device.id)


def _send_status(timer_ids: set[int]) -> None:
    for timer_id in timer_ids:
        device = db.session.get(TimerDevice, timer_id)
        if device is not None:
            socketio.emit("timer_status", timer_dict(device), namespace="/timekeeper", to=f"tk:{device.track_id}")
