"""Racer-model operations: upload (streamed), list, access rules, delete, retention.

Scanning and inspection run in the background (``models_mgr.jobs``). Services flush;
the caller commits; storage deletions and pushes happen after the commit.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from datetime import date, timedelta
from typing import BinaryIO

from flask import current_app
from sqlalchemy.orm import selectinload

from drem.auth.models import User
from drem.events.models import Event, EventRacer
from drem.events.service import get_event
from drem.models_mgr import detail
from drem.models_mgr.models import (
    AVAILABLE,
    DELETED,
    INVALID,
    QUARANTINED,
    STATUSES,
    UPLOADED,
    RacerModel,
)
from drem.models_mgr.storage import Storage, UploadTooLarge, storage_from_url
from drem.platform.audit import record_audit
from drem.platform.background import wake
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, Forbidden, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.permissions import RACER, allowed

# Accepted file endings (DESIGN.md, "Model formats"): DeepRacer archives and Donkey Car models.
EXTENSIONS = (".tar.gz", ".tgz", ".h5", ".keras", ".tflite", ".zip")


class TooLarge(ServiceError):
    """The upload is over ``UPLOAD_LIMIT_MB`` (HTTP 413)."""

    status = 413



def push_status(model: dict) -> None:
    """Push a model's new status (``RacerModel.to_dict()``) to its owner's pages and the
    staff model list (namespace ``/models``). Call after the commit."""
    socketio.emit("model_status", model, namespace="/models", to=f"user:{model['owner_id']}")
    socketio.emit("model_status", model, namespace="/models", to="models:staff")

def get_storage() -> Storage:
    """The app's model storage (folder or S3 bucket from ``STORAGE_URL``), built once."""
    ext = current_app.extensions
    if "drem_storage" not in ext:
        ext["drem_storage"] = storage_from_url(current_app.config["STORAGE_URL"], current_app.instance_path)
    return ext["drem_storage"]


def clean_filename(name: str) -> str:
    """The display name of an upload: no folders, no control characters, at most 255
    characters; unicode and spaces are kept. ServiceError for an unsupported ending."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not name or name in (".", ".."):
        raise ServiceError("the upload has no file name", "filename")
    if not name.lower().endswith(EXTENSIONS):
        raise ServiceError("unsupported file type: upload a DeepRacer .tar.gz, or a Donkey Car "
                           ".h5, .keras, .tflite or zipped SavedModel", "filename")
    return name[-255:]


class _YieldingReader:
    """Wraps an upload stream and lets other work run between chunks.

    Under gunicorn's gevent worker a socket read that finds data waiting does not
    yield, so a fast client would keep the one event loop busy for a whole 500 MB
    upload (seconds in which no page, socket push or lap report is served).
    ``time.sleep(0)`` is gevent's yield when patched, and a harmless GIL release in
    threads. Yields at least every ``every`` bytes.
    """

    def __init__(self, stream: BinaryIO, every: int = 1024 * 1024):
        self._stream, self._every, self._since = stream, every, 0

    def read(self, n: int = -1) -> bytes:
        """Read like the wrapped stream, yielding once per ``every`` bytes read."""
        data = self._stream.read(n)
        self._since += len(data)
        if self._since >= self._every:
            self._since = 0
            time.sleep(0)
        return data


def _extension(name: str) -> str:
    lower = name.lower()
    return next(ext for ext in EXTENSIONS if lower.endswith(ext))


def upload_model(owner: User, filename: str, stream: BinaryIO, content_length: int | None,
                 event_id: int | None = None, settings: dict | None = None) -> RacerModel:
    """Stream an upload into storage and record it as ``uploaded``; the scan job is woken
    after the commit.

    ``settings``: the racer's Donkey settings, already checked
    (:func:`drem.models_mgr.donkey_settings.settings_from_upload`); refused with a
    ServiceError for a DeepRacer archive. Inspection merges them with a shipped config
    and the model's input height.

    ``event_id``: the event the model is for (None: no event; existing models without one
    stay valid). NotFound for an unknown event; a racer must be registered for it
    (ServiceError, field ``event_id``).

    ``content_length`` (bytes, None for chunked bodies) is checked first; the limit is
    enforced again while streaming. Raises TooLarge (413) over ``UPLOAD_LIMIT_BYTES`` or
    when a racer's stored models would exceed ``UPLOAD_QUOTA_BYTES`` (nothing is kept then),
    ServiceError for a bad name or an empty file.
    """
    name = clean_filename(filename)
    if settings and _extension(name) in (".tar.gz", ".tgz"):
        raise ServiceError("throttle range and crop are Donkey Car settings; a DeepRacer model "
                           "carries its own in model_metadata.json", "categorical_throttle_range")
    limit = current_app.config["UPLOAD_LIMIT_BYTES"]
    if content_length is not None and content_length > limit:
        raise TooLarge(f"the file is {content_length / 1e6:.0f} MB; the limit is {limit // 2**20} MB")
    room = quota_left(owner)
    if room is not None:
        if content_length is not None and content_length > room:
            raise TooLarge(_quota_message(owner, content_length))
        limit = min(limit, room)
    if event_id is not None:
        check_upload_event(owner, get_event(event_id))
    key = f"models/{owner.id}/{uuid.uuid4().hex}{re.sub(r'[^a-z0-9.]', '', _extension(name))}"
    storage = get_storage()
    try:
        put = storage.put(key, _YieldingReader(stream), max_size=limit)
    except UploadTooLarge:
        if room is not None and limit == room:
            raise TooLarge(_quota_message(owner, None)) from None
        raise TooLarge(f"the file is larger than the {limit // 2**20} MB limit") from None
    if put.size == 0:
        storage.delete(key)
        raise ServiceError("the file is empty", "file")
    now = utcnow()
    model = RacerModel(owner_id=owner.id, event_id=event_id, filename=name, storage_key=key, status=UPLOADED,
                       size=put.size, sha256=put.sha256, md5=put.md5, uploaded_at=now, next_attempt_at=now,
                       model_settings=dict(settings) if settings else None,
                       expires_at=now + timedelta(days=current_app.config["MODEL_RETENTION_DAYS"]))
    db.session.add(model)
    db.session.flush()
    after_commit(wake)
    after_commit(lambda m=model.to_dict(): push_status(m))
    return model


def check_upload_event(owner: User, event: Event) -> None:
    """Raise ServiceError (field ``event_id``) when a racer uploads for an event they are
    not registered for; staff may upload for any event."""
    if owner.role != RACER:
        return
    if db.session.scalar(db.select(EventRacer.id).filter_by(event_id=event.id, user_id=owner.id)) is None:
        raise ServiceError(f"you are not registered for {event.name}; register for it first", "event_id")


def upload_events(user: User, today: date | None = None) -> tuple[list[Event], int | None]:
    """The events ``user`` may upload models for, and the one the upload page picks first.

    Racers: the events they are registered for; staff: every event. Listed by date, the
    newest first. The default is the registered event that is open (its date is ``today``,
    a UTC date, or later), the nearest one first; None (no event) when there is none or
    for staff.
    """
    today = today or utcnow().date()
    query = db.select(Event).order_by(Event.date.desc(), Event.id.desc())
    if user.role == RACER:
        query = query.join(EventRacer, EventRacer.event_id == Event.id).where(EventRacer.user_id == user.id)
    events = list(db.session.scalars(query))
    if user.role != RACER:
        return events, None
    open_events = sorted((e for e in events if e.date >= today), key=lambda e: (e.date, e.id))
    return events, open_events[0].id if open_events else None


def stored_bytes(owner: User) -> int:
    """Bytes of ``owner``'s models that hold a file (every status but ``deleted``)."""
    return int(db.session.scalar(db.select(db.func.coalesce(db.func.sum(RacerModel.size), 0))
                                 .where(RacerModel.owner_id == owner.id, RacerModel.status != DELETED)) or 0)


def quota_left(owner: User) -> int | None:
    """Bytes ``owner`` may still upload under ``UPLOAD_QUOTA_BYTES`` (racers only; None for
    staff, who have no quota). Never below 0."""
    if owner.role != RACER:
        return None
    return max(0, current_app.config["UPLOAD_QUOTA_BYTES"] - stored_bytes(owner))


def _quota_message(owner: User, size: int | None) -> str:
    quota = current_app.config["UPLOAD_QUOTA_BYTES"]
    what = f"this {size / 2**20:.0f} MB file" if size is not None else "this file"
    return (f"{what} would take your models over your {quota // 2**20} MB quota "
            f"({stored_bytes(owner) / 2**20:.0f} MB stored); delete old models first")


#: Orders of the model list (by upload time; ties by id, the later upload first).
SORTS = ("newest", "oldest")


def list_models(viewer: User, owner_id: int | None = None, event_id: int | None = None,
                status: str | None = None, page: int = 1, per_page: int = 25, q: str | None = None,
                sort: str = "newest"):
    """A page of models the viewer may see (own ones for racers, all for staff): a
    Flask-SQLAlchemy ``Pagination`` of ``RacerModel`` rows (a page past the end is empty).

    ``q`` keeps models whose file name or racer's username contains it (case-insensitive;
    ``%`` and ``_`` are plain characters). ``event_id`` keeps models uploaded for that
    event; ``status`` one of :data:`~drem.models_mgr.models.STATUSES` (deleted models are
    left out unless ``status="deleted"`` is asked for); ``sort`` ``"newest"`` or
    ``"oldest"`` upload time first. Raises ServiceError (field ``status`` / ``sort``) for
    a status or order that does not exist.
    """
    if status and status not in STATUSES:
        raise ServiceError(f"unknown status {status!r}; one of {', '.join(STATUSES)}", "status")
    if sort not in SORTS:
        raise ServiceError(f"unknown order {sort!r}; newest or oldest", "sort")
    order = (RacerModel.uploaded_at.desc(), RacerModel.id.desc()) if sort == "newest" else \
        (RacerModel.uploaded_at.asc(), RacerModel.id.asc())
    query = db.select(RacerModel).options(selectinload(RacerModel.owner), selectinload(RacerModel.event)) \
        .order_by(*order)
    if not allowed(viewer, "models.view_all"):
        owner_id = viewer.id
    if owner_id is not None:
        query = query.where(RacerModel.owner_id == owner_id)
    if event_id is not None:
        query = query.where(RacerModel.event_id == event_id)
    if q:
        racer = db.select(User.id).where(User.username.icontains(q, autoescape=True))
        query = query.where(db.or_(RacerModel.filename.icontains(q, autoescape=True),
                                   RacerModel.owner_id.in_(racer)))
    query = query.where(RacerModel.status == status) if status else query.where(RacerModel.status != DELETED)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def get_model(viewer: User, model_id: int) -> RacerModel:
    """A model the viewer may see; NotFound otherwise (another racer's model looks absent)."""
    model = db.session.get(RacerModel, model_id)
    if model is None or model.status == DELETED:
        raise NotFound("no such model")
    if model.owner_id != viewer.id and not allowed(viewer, "models.view_all"):
        raise NotFound("no such model")
    return model


def available_model(model_id: int) -> RacerModel:
    """The model with this id if it is scanned clean (``available``): what a car may load
    and download. NotFound for an unknown, deleted or not (yet) clean model."""
    model = db.session.get(RacerModel, model_id)
    if model is None or model.status != AVAILABLE:
        raise NotFound("the model is gone or not available")
    return model


def model_exists(model_id: int) -> bool:
    """True when a model row with this id exists (in any status)."""
    return db.session.get(RacerModel, model_id) is not None


def list_available_models(limit: int = 200) -> list[RacerModel]:
    """The newest ``limit`` models that are ``available`` (a car may load them)."""
    query = (db.select(RacerModel).where(RacerModel.status == AVAILABLE)
             .order_by(RacerModel.uploaded_at.desc(), RacerModel.id.desc()).limit(limit))
    return list(db.session.scalars(query))


def check_download(viewer: User, model: RacerModel) -> None:
    """Raise Forbidden unless ``viewer`` may download ``model``: available (or invalid, so a
    racer gets their file back) for its owner and staff; quarantined only for admins."""
    if model.status == QUARANTINED:
        if not allowed(viewer, "models.admin"):
            raise Forbidden("this model is quarantined (a virus was found); only an admin can download it")
        return
    if model.status not in (AVAILABLE, INVALID):
        raise Forbidden(f"the model is {model.status}; it can be downloaded once the scan is done")


def delete_refusal(actor: User, model: RacerModel) -> str | None:
    """Why ``actor`` may not delete ``model`` (a sentence), or None when they may: racers
    delete their own models, ``models.delete_any`` anyone's, quarantined ones only
    ``models.admin``. A live race is checked by :func:`delete_model` itself."""
    if model.status == QUARANTINED and not allowed(actor, "models.admin"):
        return "only an admin can delete a quarantined model"
    if model.owner_id != actor.id and not allowed(actor, "models.delete_any"):
        return "you can only delete your own models"
    return None


def delete_model(actor: User, model: RacerModel) -> None:
    """Delete a model: racers their own, staff with ``models.delete_any`` (operators,
    admins) anyone's; a quarantined model only an admin (``models.admin``).

    A soft delete, so race history stays intact: the row stays with status ``deleted``
    (left out of every list, refused to cars and race set-up) and the races that used it
    keep pointing at it; the stored file is removed after the commit. A car that holds a
    copy keeps it until the operator clears the car (it cannot download or race it again).
    Someone else's model is audited (``model.delete`` with the file name, owner, the cars
    holding it and its race counts).

    Raises Forbidden (403) for a refused role, Conflict (409) while a race on a track
    drives the model (submit or discard that race first).
    """
    refusal = delete_refusal(actor, model)
    if refusal:
        raise Forbidden(refusal)
    race = detail.live_race(model)
    if race is not None:
        raise Conflict(f"the model is in race {race.id} on {race.track.name}, which is {race.status}; "
                       "submit or discard that race first")
    if model.owner_id != actor.id:
        cars = detail.cars_holding([model.id]).get(model.id, [])
        record_audit(actor, "model.delete", "model", model.id, filename=model.filename, owner_id=model.owner_id,
                     owner=model.owner.username, status=model.status, sha256=model.sha256,
                     cars=[c["hostname"] for c in cars], races=detail.race_counts(model))
    model.status, model.deleted_at = DELETED, utcnow()
    model.status_reason = "deleted by its racer" if model.owner_id == actor.id else f"deleted by {actor.username}"
    db.session.flush()
    key, storage = model.storage_key, get_storage()
    after_commit(lambda: storage.delete(key))
    after_commit(lambda m=model.to_dict(): push_status(m))


def expire_models(now=None) -> list[RacerModel]:
    """Mark models whose retention ended as deleted (files removed after commit).
    Returns the models changed."""
    now = now or utcnow()
    rows = list(db.session.scalars(db.select(RacerModel).where(RacerModel.status != DELETED,
                                                               RacerModel.expires_at <= now)))
    storage = get_storage()
    for model in rows:
        model.status, model.deleted_at, model.status_reason = DELETED, now, "retention period ended"
        after_commit(lambda key=model.storage_key: storage.delete(key))
    db.session.flush()
    return rows
