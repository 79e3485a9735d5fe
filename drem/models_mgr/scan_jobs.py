"""Background work on models: virus scan and inspection (side by side), with retries; retention.

A model goes uploaded -> scanning -> available | quarantined | invalid. It is
never made available without clamd's clean verdict: when clamd is down the model
stays in ``scanning`` and is retried with exponential backoff (2 s doubling to
5 min), also after a restart, because the queue *is* the database.

Runs in a worker thread inside the app (``BACKGROUND_JOBS=threads``, the default)
or in separate ``drem worker`` processes (``BACKGROUND_JOBS=external``). Several
runners may work at once: a model is claimed with one conditional UPDATE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from flask import current_app

from drem.models_mgr.donkey_settings import DONKEY_FORMATS, resolve_settings
from drem.models_mgr.inspect import InspectLimits, ModelInfo, ModelRejected, inspect_model_file
from drem.models_mgr.models import AVAILABLE, INVALID, PENDING, QUARANTINED, SCANNING, RacerModel
from drem.models_mgr.scanner import ScannerUnavailable, scanner_from_url
from drem.models_mgr.service import expire_models, get_storage, push_status
from drem.platform.db_types import utcnow
from drem.platform.effects import commit
from drem.platform.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")
CLAIM_S = 600  # a claim outlives the longest scan (500 MB at ~50 MB/s, plus inspection)
MAX_BACKOFF_S = 300


def backoff_s(attempts: int) -> int:
    """Seconds to wait before scan attempt ``attempts + 1``: 2, 4, 8 … capped at 300."""
    return min(MAX_BACKOFF_S, 2 ** max(1, attempts))


def _claim(model_id: int) -> bool:
    now = utcnow()
    result = db.session.execute(
        db.update(RacerModel)
        .where(RacerModel.id == model_id, RacerModel.status.in_(PENDING),
               db.or_(RacerModel.claimed_until.is_(None), RacerModel.claimed_until < now))
        .values(claimed_until=now + timedelta(seconds=CLAIM_S))
    )
    commit()
    return result.rowcount == 1


def due_model_ids(limit: int = 20) -> list[int]:
    """Ids of models waiting for a scan whose retry time has come, oldest first."""
    now = utcnow()
    query = (db.select(RacerModel.id)
             .where(RacerModel.status.in_(PENDING),
                    db.or_(RacerModel.next_attempt_at.is_(None), RacerModel.next_attempt_at <= now),
                    db.or_(RacerModel.claimed_until.is_(None), RacerModel.claimed_until < now))
             .order_by(RacerModel.uploaded_at).limit(limit))
    return list(db.session.scalars(query))


def _finish(model: RacerModel) -> None:
    model.claimed_until = None
    commit()
    push_status(model.to_dict())


def process_model(model_id: int) -> str | None:
    """Scan and inspect one model if it can be claimed; returns its new status (None when
    another runner has it). Commits; pushes each status change."""
    if not _claim(model_id):
        return None
    model = db.session.get(RacerModel, model_id)
    storage = get_storage()
    if model.status != SCANNING:
        model.status, model.status_reason = SCANNING, None
        commit()
        push_status(model.to_dict())
    try:
        scanner = scanner_from_url(current_app.config["CLAMD_URL"])
        scanner.ping()  # clamd down: postpone before reading (or downloading) anything
        with storage.local_path(model.storage_key) as path:
            # Inspection (hashing, gunzip) is CPU work: it runs in a native thread *while*
            # clamd scans, so a big model costs about max(scan, inspection) instead of the
            # sum, and the server's event loop (gevent) stays free for other requests. The
            # inspector never executes or extracts anything, so reading a file that may
            # still turn out infected is safe; its result is used only on a clean verdict.
            inspection = _in_native_thread(_inspect, path, model.filename)
            try:
                with open(path, "rb") as fh:
                    verdict = scanner.scan_stream(fh)
            finally:
                info, rejected, error = inspection()  # the file must outlive the inspection
    except (ScannerUnavailable, ValueError) as exc:
        model.scan_attempts += 1
        wait = backoff_s(model.scan_attempts)
        model.next_attempt_at = utcnow() + timedelta(seconds=wait)
        model.status_reason = f"waiting for the virus scanner ({exc}); next try in {wait} s"
        log.warning("scan of model %s postponed: %s", model.id, exc)
        _finish(model)
        return model.status
    model.scan_attempts += 1
    model.scanned_at = utcnow()
    if not verdict.clean:
        _quarantine(model, verdict.signature or "unknown signature")
        _finish(model)
        return model.status
    if error is not None:
        raise error  # unexpected (a read error): the runner logs it; the claim runs out, then a retry
    if rejected is None:
        try:
            settings = _model_settings(model, info)
        except ModelRejected as exc:
            rejected = exc
    if rejected is not None:
        model.status, model.status_reason = INVALID, rejected.reason
    else:
        _apply_info(model, info)
        model.model_settings = settings or None
        model.status, model.status_reason = AVAILABLE, None
    _finish(model)
    return model.status


def _inspect(path, filename: str) -> tuple[ModelInfo | None, ModelRejected | None, Exception | None]:
    """Inspect a file, returning ``(info, rejection, unexpected error)`` (one is set)
    instead of raising, so it can run in another thread."""
    try:
        return inspect_model_file(path, filename, InspectLimits()), None, None
    except ModelRejected as exc:
        return None, exc, None
    except Exception as exc:  # noqa: BLE001 - handed back to process_model
        return None, None, exc


def _in_native_thread(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Start ``fn(*args)`` in a real OS thread; returns a function that waits for its result.

    Under gunicorn's gevent worker ``threading`` is patched into greenlets, which would
    run CPU work on the one event loop and stall every other request and socket; gevent's
    thread pool runs it on a native thread instead (hashlib and zlib release the GIL)
    and waiting for it yields to other greenlets. Without gevent a plain thread is used.
    """
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        return gevent.get_hub().threadpool.spawn(fn, *args).get
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drem-inspect")
    try:
        return executor.submit(fn, *args).result
    finally:
        executor.shutdown(wait=False)


def _quarantine(model: RacerModel, signature: str) -> None:
    """Keep an infected file aside under ``quarantine/`` (admins only) and mark the model."""
    storage = get_storage()
    new_key = "quarantine/" + model.storage_key.split("/", 1)[1]
    with storage.open(model.storage_key) as fh:
        storage.put(new_key, fh)
    old_key = model.storage_key
    model.storage_key, model.virus_signature = new_key, signature
    model.status = QUARANTINED
    model.status_reason = f"a virus was found ({signature}); the file is quarantined"
    db.session.flush()
    storage.delete(old_key)


def _model_settings(model: RacerModel, info: ModelInfo) -> dict:
    """The racer's settings merged with a shipped config and checked against the input
    height (ModelRejected on a mismatch); ``{}`` for DeepRacer models."""
    if info.format not in DONKEY_FORMATS:
        return {}
    return resolve_settings(model.model_settings, info.shipped_settings, info.input_rows)


def _apply_info(model: RacerModel, info) -> None:
    model.model_format = info.format
    model.model_pb_sha256, model.model_pb_md5 = info.model_pb_sha256, info.model_pb_md5
    model.sensors, model.action_space_type = info.sensors or None, info.action_space_type
    model.action_space, model.neural_network = info.action_space, info.neural_network
    model.training_algorithm = info.training_algorithm
    model.details = {"container": info.container, "version": info.version,
                     "uncompressed_size": info.uncompressed_size, "model_pb_path": info.model_pb_path,
                     "saved_model_dir": info.saved_model_dir}


def run_once(limit: int = 20) -> int:
    """Process every model that is due (up to ``limit``); returns how many were handled."""
    done = 0
    for model_id in due_model_ids(limit):
        if process_model(model_id) is not None:
            done += 1
    return done


def run_retention() -> int:
    """Delete models whose retention ended; returns how many."""
    rows = expire_models()
    changed = [m.to_dict() for m in rows]
    commit()
    for m in changed:
        push_status(m)
    return len(changed)
