"""Read model archives safely as streams: nothing is extracted, no header is trusted.

The building blocks :mod:`.inspect` checks archives with:

* :func:`member_name` normalises a member name and rejects absolute names, ``..``,
  backslashes and NUL bytes;
* :class:`BombGuard` counts every unpacked byte while it streams and stops a
  decompression bomb (total size, ratio, oversized tar headers) on the spot;
  :class:`GuardedGunzip` is a gzip stream that feeds it;
* :func:`read_limited` reads a small member (metadata) up to a size limit;
* :func:`scan_zip` opens a zip, rejects links, device files, FIFOs, encrypted and
  duplicate members and too many members, and streams every member through the guard.

Every rejection is a :class:`~drem.models_mgr.inspect_types.ModelRejected` with a
message for the racer. No Flask imports.
"""

from __future__ import annotations

import gzip
import io
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from drem.models_mgr.inspect_types import InspectLimits, ModelInfo, ModelRejected

__all__ = [
    "TAR_HEADER_SLACK",
    "BombGuard",
    "GuardedGunzip",
    "member_name",
    "read_limited",
    "scan_zip",
]

_MIB = 1024 * 1024
#: Bytes a tar header (with pax or GNU long-name records) may take, plus read-ahead.
TAR_HEADER_SLACK = 1 * _MIB


def _fmt_mb(n: int | float) -> str:
    return f"{n / _MIB:.0f} MB" if n >= _MIB else f"{int(n)} bytes"


def member_name(raw: str) -> str:
    """Normalise an archive member name, rejecting anything that could escape.

    Returns the name without leading ``./`` and without empty or ``.`` segments;
    ``""`` for the archive's own root entry (``.`` or ``./``).
    """
    shown = raw[:200]
    if "\x00" in raw:
        raise ModelRejected(f"The archive contains a member name with a NUL byte ({shown!r}).")
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        raise ModelRejected(
            f"The archive contains a member with an absolute path ({shown!r}); "
            "model archives must only contain relative paths."
        )
    if "\\" in raw:
        raise ModelRejected(
            f"The archive contains a member name with a backslash ({shown!r}); "
            "use '/' as the folder separator."
        )
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelRejected(
            f"The archive contains a member that points outside the archive ({shown!r} uses '..')."
        )
    return "/".join(parts)


def read_limited(stream: BinaryIO, limit: int, what: str) -> bytes:
    """Read all of ``stream``, rejecting it once it holds more than ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModelRejected(
            f"{what} is larger than {_fmt_mb(limit)}; this is not a normal model file."
        )
    return data


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes consumed from the underlying file."""

    def __init__(self, fh: BinaryIO):
        super().__init__()
        self._fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        n = len(data)
        memoryview(buffer)[:n] = data
        self.count += n
        return n


class BombGuard:
    """Counts unpacked bytes as they stream and rejects bombs on the spot."""

    def __init__(self, limits: InspectLimits, packed_size: int, filename: str):
        self.limits = limits
        self.packed_size = max(packed_size, 1)
        self.filename = filename
        self.total = 0
        # While reading tar headers: the stream position past which more bytes
        # mean an oversized header (pax/GNU long-name records are read into
        # memory whole by tarfile). None = no such budget.
        self.budget_end: int | None = None

    def add(self, n: int, packed_so_far: int | None = None) -> None:
        self.total += n
        limits = self.limits
        if self.budget_end is not None and self.total > self.budget_end:
            raise ModelRejected(
                f"{self.filename} contains an oversized tar header (over "
                f"{_fmt_mb(TAR_HEADER_SLACK)}); this is not a normal model archive."
            )
        if self.total > limits.max_uncompressed_bytes:
            raise ModelRejected(
                f"{self.filename} unpacks to more than {_fmt_mb(limits.max_uncompressed_bytes)} "
                "(a decompression bomb or not a normal model); rejected."
            )
        if self.total > limits.ratio_floor_bytes:
            packed = max(packed_so_far if packed_so_far is not None else self.packed_size, 1)
            ratio = self.total / packed
            if ratio > limits.max_ratio:
                raise ModelRejected(
                    f"{self.filename} unpacks to over {limits.max_ratio:.0f} times its "
                    f"compressed size ({_fmt_mb(self.total)} from {_fmt_mb(packed)} so far): "
                    "this looks like a decompression bomb; rejected."
                )


class GuardedGunzip(io.RawIOBase):
    """Decompressed view of a gzip file that feeds every byte through a BombGuard."""

    def __init__(self, fh: BinaryIO, guard: BombGuard):
        super().__init__()
        self._raw = _CountingReader(fh)
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[arg-type]
        self._guard = guard

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Ask for at most 64 KiB at a time so a single call cannot unpack a lot
        # before the guard sees it.
        view = memoryview(buffer)[: 64 * 1024]
        n = self._gz.readinto(view)
        if n:
            self._guard.add(n, self._raw.count)
        return n

    def drain(self) -> None:
        """Read to the end, so the gzip trailer (CRC, length) is verified."""
        buf = bytearray(64 * 1024)
        while self.readinto(buf):
            pass


def _zip_declared_entries(path: Path) -> int | None:
    """Number of entries the zip's end-of-central-directory record declares (zip64
    aware), read before zipfile parses the whole central directory into memory.
    None when no end record is found (zipfile then reports the damage)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + 22 > len(tail):
            return None
        (entries,) = struct.unpack_from("<H", tail, pos + 10)
        if entries != 0xFFFF:
            return entries
        locator = pos - 20
        if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return entries
        (eocd64_offset,) = struct.unpack_from("<Q", tail, locator + 8)
        if eocd64_offset + 56 > size:
            return None
        fh.seek(eocd64_offset)
        record = fh.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        (entries64,) = struct.unpack_from("<Q", record, 32)
        return entries64


def scan_zip(
    path: Path, info: ModelInfo, limits: InspectLimits
) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """Open a zip, check every member, stream every member through the bomb guard."""
    declared_entries = _zip_declared_entries(path)
    if declared_entries is not None and declared_entries > limits.max_members:
        raise ModelRejected(
            f"The archive has {declared_entries} members, more than the limit of {limits.max_members}."
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelRejected(f"{info.filename} is not a readable zip archive ({exc}).") from exc
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ModelRejected(
                f"The archive has {len(infos)} members, more than the limit of {limits.max_members}."
            )
        declared = 0
        files: dict[str, zipfile.ZipInfo] = {}
        members: list[str] = []
        for zi in infos:
            name = member_name(zi.filename)
            shown = name or zi.filename
            mode = (zi.external_attr >> 16) & 0xFFFF
            if mode:
                if stat.S_ISLNK(mode):
                    raise ModelRejected(
                        f"The archive contains a symbolic link ({shown!r}); links are not allowed in model archives."
                    )
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    raise ModelRejected(f"The archive contains a device file ({shown!r}).")
                if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise ModelRejected(f"The archive contains a FIFO or socket ({shown!r}).")
            if zi.flag_bits & 0x1:
                raise ModelRejected(f"The archive contains an encrypted member ({shown!r}).")
            if zi.is_dir():
                if name:
                    members.append(name + "/")
                continue
            if not name:
                raise ModelRejected("The archive contains a file with an empty name.")
            if name in files:
                raise ModelRejected(f"The archive contains {name!r} twice.")
            files[name] = zi
            members.append(name)
            declared += zi.file_size
        if declared > limits.max_uncompressed_bytes:
            raise ModelRejected(
                f"{info.filename} unpacks to more than {_fmt_mb(limits.max_uncompressed_bytes)}; rejected."
            )
        # Headers can lie: count the real bytes while decompressing every member.
        guard = BombGuard(limits, info.size, info.filename)
        buf = bytearray(64 * 1024)
        for zi in files.values():
            with zf.open(zi) as member:
                while n := member.readinto(buf):
                    guard.add(n)
        info.members = members
        info.uncompressed_size = guard.total
        return zf, files
    except ModelRejected:
        zf.close()
        raise
    except (
        zipfile.BadZipFile,
        OSError,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        zf.close()
        raise ModelRejected(
            f"{info.filename} is a damaged or unsupported zip archive ({exc})."
        ) from exc
