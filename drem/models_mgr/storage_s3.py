"""Model storage in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO): :class:`S3Storage`.

Objects live in a bucket under a prefix, through boto3 (imported only when a client
is built). Uploads are streamed as a multipart upload one part at a time, so a whole
model is never in memory; reads are streamed, ranges use ranged GETs. No Flask
imports.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from drem.models_mgr.storage_base import (
    COPY_CHUNK,
    HashingLimiter,
    InvalidKey,
    ObjectNotFound,
    PutResult,
    RangeNotSatisfiable,
    Storage,
    StorageError,
    validate_key,
)

__all__ = ["DEFAULT_PART_SIZE", "S3Storage"]

#: S3 multipart part size in bytes (S3 minimum is 5 MiB except for the last part).
DEFAULT_PART_SIZE = 8 * 1024 * 1024


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
        reader = HashingLimiter(stream, max_size)
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
