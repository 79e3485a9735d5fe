"""Model storage in a folder on the laptop: :class:`LocalStorage`.

Files live under a root folder (default ``<instance>/models``). Writes go to a
temporary file in ``root/.tmp`` (same file system) and are renamed into place, so a
reader never sees half a file; ranges are read by seeking. No Flask imports.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
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

__all__ = ["LocalStorage"]


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
        reader = HashingLimiter(stream, max_size)
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
