"""Model file storage: a folder on the laptop, or an S3-compatible bucket.

One interface, :class:`Storage`, two implementations:

* :class:`LocalStorage` - files under a root folder (default
  ``<instance>/models``). Writes go to a temporary file in the same folder tree and
  are renamed into place, so a reader never sees half a file.
* :class:`S3Storage` - objects in a bucket under a prefix, through boto3. Uploads are
  streamed as a multipart upload one part at a time, so a whole model is never in
  memory; reads are streamed, ranges use ranged GETs.

Keys are relative, ``/``-separated names such as ``models/42/3f9c.tar.gz``. Each
segment is limited to letters, digits, ``.``, ``_`` and ``-``; ``.``/``..`` segments,
absolute names, backslashes and empty segments are refused (:class:`InvalidKey`),
so no key can reach outside the storage root.

Every ``put`` enforces the size limit *while streaming*: as soon as more than
``max_size`` bytes have arrived it stops reading, removes the partial file or aborts
the multipart upload, and raises :class:`UploadTooLarge`. Size, SHA-256 and MD5 are
computed on the fly from the same bytes that are stored.

The code is split by job: :mod:`.storage_base` (the interface, errors, key checks,
hashing while streaming), :mod:`.storage_local` and :mod:`.storage_s3` (the two
implementations); this module picks one. Import everything from here.

No Flask imports; :func:`storage_from_url` turns the ``STORAGE_URL`` setting into a
storage object.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from drem.models_mgr.storage_base import COPY_CHUNK as COPY_CHUNK
from drem.models_mgr.storage_base import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from drem.models_mgr.storage_base import (
    InvalidKey,
    ObjectNotFound,
    PutResult,
    RangeNotSatisfiable,
    Storage,
    StorageError,
    UploadTooLarge,
    validate_key,
)
from drem.models_mgr.storage_local import LocalStorage
from drem.models_mgr.storage_s3 import DEFAULT_PART_SIZE as DEFAULT_PART_SIZE
from drem.models_mgr.storage_s3 import S3Storage

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "ObjectNotFound",
    "PutResult",
    "RangeNotSatisfiable",
    "S3Storage",
    "Storage",
    "StorageError",
    "UploadTooLarge",
    "storage_from_url",
    "validate_key",
]


def storage_from_url(url: str, instance_path: str | os.PathLike[str]) -> Storage:
    """Build the storage named by a ``STORAGE_URL`` value.

    * ``""`` -> :class:`LocalStorage` on ``<instance_path>/models``;
    * ``file:///abs/folder`` -> :class:`LocalStorage` on that folder;
      ``file://relative/folder`` or ``file:relative`` -> relative to ``instance_path``;
    * ``s3://bucket`` or ``s3://bucket/prefix`` -> :class:`S3Storage`, connection
      settings from the AWS environment variables (``AWS_ENDPOINT_URL`` for
      SeaweedFS/MinIO).

    Raises:
        ValueError: unknown scheme or a malformed URL.
    """
    instance = Path(instance_path)
    if not url:
        return LocalStorage(instance / "models")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        raw = unquote(parsed.netloc + parsed.path)
        if not raw:
            return LocalStorage(instance / "models")
        path = Path(raw)
        return LocalStorage(path if path.is_absolute() else instance / path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"STORAGE_URL {url!r} has no bucket: expected s3://bucket/prefix")
        return S3Storage(parsed.netloc, unquote(parsed.path).strip("/"))
    raise ValueError(
        f"unsupported STORAGE_URL {url!r}: use '', file://FOLDER or s3://BUCKET/PREFIX"
    )
