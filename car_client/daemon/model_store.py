"""Driving models kept on the car: download with resume, sha256 check, index.

Layout under the store folder (``<data dir>/models``)::

    index.json                 {"<model_id>": {model_id, name, format, sha256, size,
                                               file, stored_at, settings}}
    <model_id>/<name>          the verified model file
    <model_id>/model_settings.json  the model's Donkey settings from ``load_model``
                               (``categorical_throttle_range``, ``crop_top``, ``crop_bottom``;
                               absent when it carries none), read by the Donkey backend
    .partial/<sha256>.part     an unfinished download (resumed with HTTP Range)

A download resumes from its ``.part`` file with ``Range: bytes=N-``; if the server
answers 200 instead of 206 the part is discarded and the download starts over. A
cut-off connection is retried (resuming) a few times within one ``load_model``.
A sha256 mismatch removes the part and fails with ``"checksum mismatch"``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from car_client.pilots.donkey import MODEL_SETTINGS_FILE, ModelSettings
from car_client.vehicle.base import ModelSpec

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
RETRIES = 4
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(Exception):
    """A model could not be loaded; ``reason`` is the text for ``command_result``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    """The connection broke mid-download: resume from the part file."""


def safe_name(text: str, fallback: str = "model") -> str:
    """A file-name-safe version of ``text`` (no folders, no odd characters)."""
    name = _SAFE.sub("_", os.path.basename(str(text or ""))).strip("._")
    return name or fallback


def _sha256_of(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest


class ModelStore:
    """The folder of models on the car. Thread-safe for index reads and writes."""

    def __init__(self, folder: str | os.PathLike, timeout_s: tuple[float, float] = (5.0, 15.0)):
        self.folder = Path(folder)
        self.partial = self.folder / ".partial"
        self.partial.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._index = self._read_index()

    # -- index -------------------------------------------------------------
    def _read_index(self) -> dict[str, dict]:
        try:
            data = json.loads((self.folder / "index.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        # keep only entries whose file is still there
        return {k: v for k, v in data.items() if (self.folder / v.get("file", "")).is_file()}

    def _write_index(self) -> None:
        tmp = self.folder / ".index.json.tmp"
        tmp.write_text(json.dumps(self._index, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.folder / "index.json")

    def ids(self) -> list[str]:
        """Model ids on the car, sorted."""
        with self._lock:
            return sorted(self._index)

    def list(self) -> list[dict]:
        """Heartbeat ``models`` list: ``[{"model_id", "sha256", "name"}]``."""
        with self._lock:
            return [{"model_id": m["model_id"], "sha256": m["sha256"], "name": m["name"]}
                    for _, m in sorted(self._index.items())]

    def get(self, model_id: str) -> ModelSpec | None:
        """The :class:`ModelSpec` of a stored model, or None if it is not on the car."""
        with self._lock:
            m = self._index.get(str(model_id))
        if m is None:
            return None
        return ModelSpec(model_id=m["model_id"], path=str(self.folder / m["file"]),
                         model_format=m["format"], name=m["name"])

    def delete(self, model_ids: list[str] | None) -> list[str]:
        """Delete the given models (None or empty list: all) and return the ids removed."""
        with self._lock:
            targets = list(self._index) if not model_ids else [str(i) for i in model_ids]
            removed = []
            for model_id in targets:
                entry = self._index.pop(model_id, None)
                if entry is None:
                    continue
                shutil.rmtree(self.folder / safe_name(model_id), ignore_errors=True)
                removed.append(model_id)
            self._write_index()
        return removed

    # -- download ----------------------------------------------------------
    def load(
        self,
        model_id: str,
        url: str,
        sha256: str,
        name: str = "",
        model_format: str = "",
        size: int | None = None,
        progress: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
        settings: dict | None = None,
    ) -> ModelSpec:
        """Download, verify and keep a model; return its :class:`ModelSpec`.

        ``sha256``: expected hex digest; ``size``: expected bytes (optional);
        ``progress(fraction)`` is called as bytes arrive; setting ``cancel`` stops
        the download (the part file is kept for a later resume). A model already
        stored with the same sha256 is not downloaded again (its settings are
        replaced). ``settings``: the model's Donkey settings (see
        :class:`~car_client.pilots.donkey.ModelSettings`), kept beside the model.

        Raises :class:`DownloadError` with reasons such as ``"checksum mismatch"``,
        ``"download refused: HTTP 403 …"``, ``"download interrupted: …"``,
        ``"download cancelled"``, ``"bad model settings: …"``.
        """
        model_id = str(model_id)
        try:
            chosen = ModelSettings.from_dict(settings).to_dict()
        except ValueError as exc:
            raise DownloadError(f"bad model settings: {exc}") from exc
        sha256 = str(sha256 or "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise DownloadError("load_model needs a sha256 hex digest")
        existing = self._index.get(model_id)
        if existing and existing["sha256"] == sha256:
            with self._lock:
                self._write_settings(model_id, chosen)
                self._write_index()
            if progress:
                progress(1.0)
            return self.get(model_id)  # type: ignore[return-value]
        part = self.partial / f"{sha256}.part"
        attempt = 0
        while True:
            try:
                self._fetch(url, part, size, progress, cancel)
                break
            except _Retryable as exc:
                attempt += 1
                if attempt > RETRIES:
                    raise DownloadError(f"download interrupted: {exc}") from exc
                log.warning("model %s download cut off (%s); resuming", model_id, exc)
                if cancel is not None and cancel.wait(min(0.2 * 2**attempt, 2.0)):
                    raise DownloadError("download cancelled") from exc
        if size is not None and part.stat().st_size != int(size):
            got = part.stat().st_size
            part.unlink(missing_ok=True)
            raise DownloadError(f"size mismatch: got {got} bytes, expected {size}")
        if _sha256_of(part).hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError("checksum mismatch")
        return self._keep(model_id, part, sha256, name, model_format, chosen)

    def settings(self, model_id: str) -> dict:
        """The stored model's settings (``{}`` when it carries none or is not on the car)."""
        with self._lock:
            return dict((self._index.get(str(model_id)) or {}).get("settings") or {})

    def _write_settings(self, model_id: str, settings: dict) -> None:
        """Keep ``settings`` beside the model and in the index (caller holds the lock)."""
        path = self.folder / safe_name(model_id) / MODEL_SETTINGS_FILE
        if settings:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(settings, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        else:
            path.unlink(missing_ok=True)
        self._index[model_id]["settings"] = settings

    def _keep(self, model_id: str, part: Path, sha256: str, name: str, fmt: str,
              settings: dict) -> ModelSpec:
        folder = self.folder / safe_name(model_id)
        with self._lock:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            file_name = safe_name(name or f"{model_id}.bin")
            os.replace(part, folder / file_name)
            self._index[model_id] = {
                "model_id": model_id, "name": name or file_name, "format": fmt,
                "sha256": sha256, "size": (folder / file_name).stat().st_size,
                "file": f"{folder.name}/{file_name}", "stored_at": time.time(),
            }
            self._write_settings(model_id, settings)
            self._write_index()
        return self.get(model_id)  # type: ignore[return-value]

    def _fetch(self, url, part: Path, size, progress, cancel) -> None:
        """Fetch ``url`` into ``part``, resuming; raise _Retryable on a cut-off."""
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > int(size):
            part.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        if have:
            log.info("resuming the download of %s at byte %d", part.name, have)
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=self.timeout_s)
        except requests.exceptions.RequestException as exc:
            raise _Retryable(f"cannot reach {url.split('?')[0]}: {exc.__class__.__name__}") from exc
        with response:
            if response.status_code == 416 and have:
                # our part is as long as (or longer than) the file: check it as it is
                if size is None or have == int(size):
                    return
                part.unlink()
                raise _Retryable("server refused the resume range")
            if response.status_code == 206 and have:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    part.unlink()
                    raise _Retryable(f"unexpected Content-Range {content_range!r}")
                mode = "ab"
            elif response.status_code == 200:
                if have:
                    log.info("server ignored the Range header; downloading from the start")
                have, mode = 0, "wb"
            elif response.status_code in (403, 404, 410):
                what = "expired or bad signature" if response.status_code == 403 else "not available"
                raise DownloadError(f"download refused: HTTP {response.status_code} ({what})")
            elif response.status_code >= 500:
                raise _Retryable(f"server error HTTP {response.status_code}")
            else:
                raise DownloadError(f"download failed: HTTP {response.status_code}")
            total = int(size) if size else None
            if total is None and response.headers.get("Content-Length", "").isdigit():
                total = have + int(response.headers["Content-Length"])
            too_big = False
            try:
                with open(part, mode) as fh:
                    for block in response.iter_content(CHUNK):
                        if cancel is not None and cancel.is_set():
                            raise DownloadError("download cancelled")
                        fh.write(block)
                        have += len(block)
                        if size and have > int(size):
                            too_big = True
                            break
                        if progress and total:
                            progress(min(1.0, have / total))
                    fh.flush()
                    os.fsync(fh.fileno())
            except requests.exceptions.RequestException as exc:
                raise _Retryable(f"connection lost after {have} bytes") from exc
            if too_big:
                part.unlink(missing_ok=True)
                raise DownloadError(f"file is larger than the announced {size} bytes")
        if total is not None and have < total:
            raise _Retryable(f"connection closed after {have} of {total} bytes")
