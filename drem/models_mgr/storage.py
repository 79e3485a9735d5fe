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

No Flask imports; :func:`storage_from_url` turns the ``STORAGE_URL`` setting into a
storage object.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

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

#: Bytes read from the source per step when writing (local storage).
COPY_CHUNK = 1024 * 1024
#: S3 multipart part size in bytes (S3 minimum is 5 MiB except for the last part).
DEFAULT_PART_SIZE = 8 * 1024 * 1024
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


class _HashingLimiter:
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


class _RangeReader(io.RawIOBase):
    """A read-only stream over ``length`` bytes of an open file, closing it when done."""

    def __init__(self, fh: BinaryIO, length: int):
        super().__init__()
        self._fh = fh
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)
        want = min(len(view), self._left)
        data = self._fh.read(want)
        n = len(data)
        view[:n] = data
        self._left -= n
        return n

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


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


class LocalStorage(Storage):
    """Files under ``root`` (created if missing).

    Temporary files of unfinished writes live in ``root/.tmp`` (same file system, so
    the final rename is atomic). That folder is reserved: keys whose first segment
    is ``.tmp`` are refused with :class:`InvalidKey`.

    Args:
        root: folder for the files.
    """

    TMP_DIR = ".tmp"

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / self.TMP_DIR
        self._tmp.mkdir(exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == self.TMP_DIR:
            raise InvalidKey(f"storage key may not start with the reserved folder {self.TMP_DIR!r}")
        path = self.root.joinpath(*key.split("/"))
        # Defence in depth: a symlinked folder inside the root must not lead out.
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise InvalidKey(f"storage key {key!r} resolves outside the storage folder")
        return path

    def put(self, key: str, stream: BinaryIO, max_size: int | None = None) -> PutResult:
        path = self._path(key)
        reader = _HashingLimiter(stream, max_size)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    # Errors of the source stream (client gone) propagate unchanged.
                    chunk = reader.read(COPY_CHUNK)
                    if not chunk:
                        break
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise StorageError(f"could not store {key!r}: {exc}") from exc
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise StorageError(f"could not store {key!r}: {exc}") from exc
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, path)
            except OSError as exc:
                raise StorageError(f"could not store {key!r}: {exc}") from exc
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        return reader.result(key)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no stored object {key!r}") from exc

    def open_range(self, key: str, start: int, end: int | None = None) -> BinaryIO:
        self._check_range(start, end)
        size = self.size(key)
        if end is not None and end <= start:
            length = 0
        else:
            if start >= size:
                raise RangeNotSatisfiable(f"range start {start} >= size {size} of {key!r}")
            length = (min(end, size) if end is not None else size) - start
        fh = self.open(key)
        fh.seek(start)
        return io.BufferedReader(_RangeReader(fh, length))  # type: ignore[return-value]

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no stored object {key!r}") from exc
        if not path.is_file():
            raise ObjectNotFound(f"no stored object {key!r}")
        return st.st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except IsADirectoryError:
            return
        # Tidy empty parent folders up to (not including) the root.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def remove_stale_temp_files(self, max_age_s: float = 3600.0) -> int:
        """Delete temporary files of writes that never finished (a crash mid-upload).

        Args:
            max_age_s: only files not modified for this many seconds are removed,
                so uploads in progress are left alone.

        Returns:
            The number of files removed.
        """
        cutoff = time.time() - max_age_s
        removed = 0
        for entry in self._tmp.iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        if not self.exists(key):
            raise ObjectNotFound(f"no stored object {key!r}")
        yield self._path(key)


class S3Storage(Storage):
    """Objects in an S3-compatible bucket (AWS S3, SeaweedFS, ...), through boto3.

    Credentials, region and endpoint come from the arguments or, when None, from
    boto3's usual sources: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``/``AWS_REGION``,
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_PROFILE``. Path-style
    addressing is used, which SeaweedFS and MinIO need.

    Args:
        bucket: bucket name.
        prefix: key prefix inside the bucket (``"drem/models"``); may be empty.
        endpoint_url: e.g. ``"http://127.0.0.1:8333"``; None for the env/AWS default.
        region_name: region; None for env, else ``"us-east-1"``.
        aws_access_key_id, aws_secret_access_key, aws_session_token: credentials.
        part_size: multipart part size in bytes (>= 5 MiB).
        client: a ready boto3 S3 client (then the connection arguments are ignored).
        tmp_dir: folder for :meth:`local_path` downloads (default: system temp).

    Raises:
        ValueError: bad bucket name, prefix or part size.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        client: Any = None,
        tmp_dir: str | os.PathLike[str] | None = None,
    ):
        if not bucket or not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart part size must be at least 5 MiB")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidKey as exc:
                raise ValueError(f"invalid S3 prefix {prefix!r}: {exc}") from exc
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.tmp_dir = str(tmp_dir) if tmp_dir is not None else None
        if client is None:
            import boto3
            from botocore.config import Config

            region = (
                region_name
                or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION")
                or "us-east-1"
            )
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                config=Config(
                    s3={"addressing_style": "path"},
                    signature_version="s3v4",
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=120,
                ),
            )
        self.client = client

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # -- helpers ---------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _error_code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def _wrap(self, exc: Exception, key: str, action: str) -> StorageError:
        code = self._error_code(exc)
        if code in ("404", "NoSuchKey", "NotFound"):
            return ObjectNotFound(f"no stored object {key!r}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(
                f"S3 refused to {action} {key!r} in bucket {self.bucket!r} ({code}): "
                "check the access key and secret"
            )
        return StorageError(f"S3 could not {action} {key!r} in bucket {self.bucket!r}: {exc}")

    def _client_errors(self) -> tuple[type[BaseException], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (ClientError, BotoCoreError)

    # -- bucket ----------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (setup step; needs the right).

        Raises:
            StorageError: the bucket cannot be checked or created.
        """
        errors = self._client_errors()
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except errors as exc:
            if self._error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._wrap(exc, self.bucket, "check bucket") from exc
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except errors as exc:
            if self._error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._wrap(exc, self.bucket, "create bucket") from exc

    # -- Storage ---------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, max_size: int | None = None) -> PutResult:
        object_key = self._object_key(key)
        reader = _HashingLimiter(stream, max_size)
        errors = self._client_errors()
        first = reader.read(self.part_size)
        try:
            if len(first) < self.part_size:
                # Small object: one PUT, no multipart bookkeeping.
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=first)
                return reader.result(key)
        except errors as exc:
            raise self._wrap(exc, key, "store") from exc

        try:
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=object_key)
        except errors as exc:
            raise self._wrap(exc, key, "store") from exc
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            chunk = first
            number = 1
            while chunk:
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
                number += 1
                chunk = b""  # drop the reference before reading the next part
                chunk = reader.read(self.part_size)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
            except errors:
                pass  # the bucket's lifecycle rules clean up what abort could not
            if isinstance(exc, errors):
                raise self._wrap(exc, key, "store") from exc  # type: ignore[arg-type]
            raise
        return reader.result(key)

    def _get(self, key: str, **kwargs: Any) -> dict[str, Any]:
        errors = self._client_errors()
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._object_key(key), **kwargs)
        except errors as exc:
            if self._error_code(exc) == "InvalidRange":
                raise RangeNotSatisfiable(f"range {kwargs.get('Range')} outside {key!r}") from exc
            raise self._wrap(exc, key, "read") from exc

    def open(self, key: str) -> BinaryIO:
        return self._get(key)["Body"]

    def open_range(self, key: str, start: int, end: int | None = None) -> BinaryIO:
        self._check_range(start, end)
        if end is not None and end <= start:
            self._object_key(key)
            if not self.exists(key):
                raise ObjectNotFound(f"no stored object {key!r}")
            return io.BytesIO(b"")  # type: ignore[return-value]
        spec = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        return self._get(key, Range=spec)["Body"]

    def _head(self, key: str) -> dict[str, Any]:
        errors = self._client_errors()
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except errors as exc:
            raise self._wrap(exc, key, "look up") from exc

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        errors = self._client_errors()
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except errors as exc:
            wrapped = self._wrap(exc, key, "delete")
            if not isinstance(wrapped, ObjectNotFound):
                raise wrapped from exc

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        body = self.open(key)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="drem-s3-", suffix=".download")
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(body, out, COPY_CHUNK)
            finally:
                body.close()
            yield Path(name)
        finally:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass


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
