"""Streaming model downloads with HTTP Range support (racers, staff and cars)."""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Response, request

from drem.models_mgr.models import RacerModel
from drem.models_mgr.service import get_storage
from drem.models_mgr.storage import RangeNotSatisfiable

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _stream(fh):
    try:
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()


def send_model_file(model: RacerModel) -> Response:
    """Stream ``model``'s file; honours ``Range: bytes=N-[M]`` (206) so a cut-off download
    resumes. 416 for a range past the end. Never reads the whole file into memory."""
    storage = get_storage()
    size = model.size
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{model.sha256}"', "X-Checksum-Sha256": model.sha256,
               "Content-Disposition": f"attachment; filename*=UTF-8''{quote(model.filename)}"}
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match:
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else size
        end = min(end, size)
        if start >= size or end <= start:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        try:
            fh = storage.open_range(model.storage_key, start, end)
        except RangeNotSatisfiable:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        headers |= {"Content-Range": f"bytes {start}-{end - 1}/{size}", "Content-Length": str(end - start)}
        return Response(_stream(fh), status=206, headers=headers, mimetype="application/octet-stream",
                        direct_passthrough=True)
    headers["Content-Length"] = str(size)
    return Response(_stream(storage.open(model.storage_key)), headers=headers,
                    mimetype="application/octet-stream", direct_passthrough=True)
