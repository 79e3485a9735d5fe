"""The model storage interface and what every backend shares.

:class:`Storage` (the interface :class:`~drem.models_mgr.storage_local.LocalStorage`
and :class:`~drem.models_mgr.storage_s3.S3Storage` implement), its errors,
:class:`PutResult`, :func:`validate_key` (keys are relative, ``/``-separated
names whose segments use only letters, digits, ``.``, ``_`` and ``-``, so no key
can reach outside the storage root) and :class:`HashingLimiter`, which computes
size, SHA-256 and MD5 while a ``put`` streams and stops as soon as ``max_size`` is
passed. Import these from :mod:`drem.models_mgr.storage`. No Flask imports.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = [
    "COPY_CHUNK",
    "MAX_KEY_LENGTH",
    "HashingLimiter",
    "InvalidKey",
    "ObjectNotFound",
    "PutResult",
    "RangeNotSatisfiable",
    "Storage",
    "StorageError",
    "UploadTooLarge",
    "validate_key",
]

#: Bytes read from the source per step when writing (local storage).
COPY_CHUNK = 1024 * 1024
#: Longest key accepted, in characters.
MAX_KEY_LENGTH = 512

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class StorageError(Exception):
    """A storage operation failed (I/O error, S3 error, credentials refused)."""


class InvalidKey(StorageError, ValueError):
    """The key is not a safe relative name (would escape the root, or odd characters)."""


class ObjectNotFound(StorageError, KeyError):
    """No object is stored under this key."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message
        return str(self.args[0]) if self.args else "object not found"


class RangeNotSatisfiable(StorageError, ValueError):
    """The requested byte range starts at or beyond the end of the object."""


class UploadTooLarge(StorageError):
    """The stream was longer than the limit; nothing was stored.

    Attributes:
        limit: the limit in bytes.
        received: bytes read from the stream before giving up (limit + something).
    """

    def __init__(self, limit: int, received: int):
        super().__init__(
            f"The upload is larger than the limit of {limit} bytes "
            f"({limit / (1024 * 1024):.0f} MB); nothing was stored."
        )
        self.limit = limit
        self.received = received


@dataclass(frozen=True)
class PutResult:
    """What :meth:`Storage.put` stored.

    Attributes:
        key: the storage key.
        size: bytes stored.
        sha256: lowercase hex SHA-256 of the stored bytes.
        md5: lowercase hex MD5 of the stored bytes.
    """

    key: str
    size: int
    sha256: str
    md5: str


def validate_key(key: str) -> str:
    """Check a storage key and return it unchanged.

    A key is 1..512 characters of ``/``-separated segments; each segment matches
    ``[A-Za-z0-9._-]+`` and is not ``.`` or ``..``.

    Raises:
        InvalidKey: the key is empty, too long, absolute, contains ``..``, ``.``,
            empty segments, backslashes, NUL or other characters.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise InvalidKey(f"storage key must be relative, got {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"storage key has an empty, '.' or '..' segment: {key!r}")
        if not _SEGMENT_RE.match(segment):
            raise InvalidKey(
                f"storage key segment {segment!r} may only use letters, digits, '.', '_' and '-'"
            )
    return key


class HashingLimiter:
    """Reads a source stream in chunks, hashing and counting, enforcing a limit."""

    def __init__(self, source: BinaryIO, max_size: int | None):
        self.source = source
        self.max_size = max_size
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def read(self, n: int) -> bytes:
        """Read up to n bytes (fewer only at the end). Raises UploadTooLarge past the limit."""
        parts: list[bytes] = []
        got = 0
        while got < n:
            data = self.source.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        if chunk:
            self.size += len(chunk)
            if self.max_size is not None and self.size > self.max_size:
                raise UploadTooLarge(self.max_size, self.size)
            self.sha256.update(chunk)
            self.md5.update(chunk)
        return chunk

    def result(self, key: str) -> PutResult:
        return PutResult(key, self.size, self.sha256.hexdigest(), self.md5.hexdigest())


class Storage(ABC):
    """Where model files live. All methods take keys checked by :func:`validate_key`."""

    @abstractmethod
    def put(self, key: str, stream: BinaryIO, max_size: int | None = None) -> PutResult:
        """Store everything readable from ``stream`` under ``key``, replacing any old object.

        Reads in chunks; at most one chunk (1 MiB local, one 8 MiB part on S3) is in
        memory. The object appears only once complete.

        Args:
            key: storage key.
            stream: binary stream with ``read(n)``; read to its end, not closed.
            max_size: limit in bytes, or None for no limit.

        Returns:
            PutResult with the size, SHA-256 and MD5 of the stored bytes.

        Raises:
            InvalidKey: unsafe key.
            UploadTooLarge: more than ``max_size`` bytes arrived; the partial data is
                removed and an existing object under ``key`` is left as it was.
            StorageError: I/O or S3 failure (partial data removed).
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads. The caller closes it (``with`` works).

        Raises:
            InvalidKey, ObjectNotFound, StorageError.
        """

    @abstractmethod
    def open_range(self, key: str, start: int, end: int | None = None) -> BinaryIO:
        """Open bytes ``start`` (inclusive) to ``end`` (exclusive, None = to the end).

        Python slice semantics: ``open_range(k, 0, 10)`` yields bytes 0..9. An ``end``
        past the end of the object is clipped (as HTTP ranges are). An empty range
        (``end <= start``) yields no bytes.

        Raises:
            ValueError: ``start`` is negative.
            RangeNotSatisfiable: ``start`` >= the object's size (and the range is
                not empty).
            InvalidKey, ObjectNotFound, StorageError.
        """

    @abstractmethod
    def size(self, key: str) -> int:
        """Return the object's size in bytes.

        Raises:
            InvalidKey, ObjectNotFound, StorageError.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Return True when an object is stored under ``key``.

        Raises:
            InvalidKey, StorageError.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object. Removing a missing object is not an error.

        Raises:
            InvalidKey, StorageError.
        """

    @abstractmethod
    def local_path(self, key: str) -> Any:
        """Context manager yielding a local :class:`~pathlib.Path` with the object's bytes.

        For local storage this is the stored file itself (do not modify it); for S3
        the object is streamed to a temporary file that is deleted on exit.

        Raises:
            InvalidKey, ObjectNotFound, StorageError.
        """

    @staticmethod
    def _check_range(start: int, end: int | None) -> None:
        if start < 0:
            raise ValueError(f"range start must be >= 0, got {start}")
