"""Virus scanning of uploaded models through clamd (ClamAV daemon).

Talks to clamd with ``clamav_client`` (the maintained fork of ``clamd``) using the
INSTREAM command, so the file never needs to be readable by the clamd user and
S3-stored models scan the same way as local ones.

The one rule this module keeps: a model is never reported clean without clamd's
verdict. Anything else (clamd down, socket path wrong, connection broken in the
middle of a stream, clamd answering ERROR, stream longer than clamd's
``StreamMaxLength``) raises :class:`ScannerUnavailable`, and the caller leaves the
model in its scanning state to try again later.

No Flask imports: the service layer builds a :class:`ClamdScanner` from the
``CLAMD_URL`` setting (``unix:///path/clamd.sock`` or ``tcp://127.0.0.1:3310``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from clamav_client.clamd import (
    BufferTooLongError,
    ClamdError,
    ClamdNetworkSocket,
    ClamdUnixSocket,
)

__all__ = [
    "ClamdScanner",
    "SignatureDatabase",
    "SignatureStatus",
    "cached_signature_status",
    "signature_status",
    "ScanVerdict",
    "ScannerUnavailable",
    "scan_stream",
    "scanner_from_url",
]

#: Bytes sent to clamd per INSTREAM chunk. clamav_client asks for 1 KiB at a time,
#: which costs a third of the throughput in Python overhead; see _ChunkReader.
INSTREAM_CHUNK = 256 * 1024

#: Default socket timeout in seconds for one clamd operation step (connect, send a
#: chunk, wait for the verdict). clamd scans a 500 MB model in about 10 s here;
#: the verdict wait is the long one.
DEFAULT_TIMEOUT_S = 300.0


class ScannerUnavailable(Exception):
    """clamd gave no verdict: it is down, unreachable, or the scan broke off.

    The message says why, for the operator. Never treat this as clean.
    """


@dataclass(frozen=True)
class ScanVerdict:
    """clamd's verdict on one stream.

    Attributes:
        clean: True when clamd answered OK, False when it found something.
        signature: the signature name clamd reported (for example
            ``"Drem.Test.EICAR-Test-File.UNOFFICIAL"`` from drem.ndb, or
            ``"Eicar-Signature"`` from the official database) when not clean, else None.
    """

    clean: bool
    signature: str | None = None


class _SourceReadError(Exception):
    """Wraps an error raised by the *source* stream, so it is not blamed on clamd."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


class _ChunkReader:
    """File-like adapter handed to ``instream``.

    * returns at least ``INSTREAM_CHUNK`` bytes per read when available: the
      library sends each returned chunk with its own length prefix, which the
      INSTREAM protocol allows for any chunk size below ``StreamMaxLength``;
    * counts bytes sent (for messages);
    * wraps errors of the source stream so they are told apart from socket errors.
    """

    def __init__(self, source: BinaryIO, chunk: int = INSTREAM_CHUNK):
        self._source = source
        self._chunk = chunk
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        want = max(n, self._chunk) if n is not None and n >= 0 else self._chunk
        try:
            data = self._source.read(want)
        except Exception as exc:  # noqa: BLE001 - re-raised unchanged by scan_stream
            raise _SourceReadError(exc) from exc
        if data is None:  # non-blocking raw streams; not expected here
            data = b""
        self.sent += len(data)
        return data


class ClamdScanner:
    """A clamd endpoint.

    Args:
        url: ``unix:///abs/path/clamd.sock`` (also ``unix:/abs/path`` or a bare
            absolute path) or ``tcp://host:port`` (port defaults to 3310).
        timeout: socket timeout in seconds for each blocking step.

    Raises:
        ValueError: the URL is not one of the forms above.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S):
        self.url = url
        self.timeout = timeout
        self._kind, self._address = _parse_clamd_url(url)

    def _client(self) -> ClamdNetworkSocket:
        if self._kind == "unix":
            client: ClamdNetworkSocket = ClamdUnixSocket(path=str(self._address))
            # The library annotates timeout as int but passes it to settimeout().
            client.timeout = self.timeout  # type: ignore[assignment]
            return client
        host, port = self._address  # type: ignore[misc]
        return ClamdNetworkSocket(host=host, port=port, timeout=self.timeout)

    def ping(self) -> None:
        """Check that clamd answers ``PING`` with ``PONG``.

        Raises:
            ScannerUnavailable: no answer or a wrong one.
        """
        try:
            answer = self._client().ping()
        except (ClamdError, OSError) as exc:
            raise ScannerUnavailable(f"clamd at {self.url} does not answer: {exc}") from exc
        if answer != "PONG":
            raise ScannerUnavailable(f"clamd at {self.url} answered {answer!r} to PING")

    def version(self) -> str:
        """Return clamd's version string, e.g. ``"ClamAV 1.4.6/27500/..."``.

        Raises:
            ScannerUnavailable: clamd cannot be reached.
        """
        try:
            return self._client().version()
        except (ClamdError, OSError) as exc:
            raise ScannerUnavailable(f"clamd at {self.url} does not answer: {exc}") from exc

    def scan_stream(self, fileobj: BinaryIO) -> ScanVerdict:
        """Scan everything readable from ``fileobj`` (read from its current position).

        The stream is sent to clamd in chunks (INSTREAM); nothing is held in memory
        beyond one chunk. clamd unpacks archives (tar, gzip, zip) itself.

        Args:
            fileobj: a binary stream with ``read(n)``; not closed here.

        Returns:
            ScanVerdict(clean=True) when clamd answered OK, or
            ScanVerdict(clean=False, signature=name) when it found something.

        Raises:
            ScannerUnavailable: clamd is down or unreachable, the connection broke,
                the stream exceeded clamd's StreamMaxLength, or clamd answered
                ERROR. Never a silent "clean".
            Exception: whatever ``fileobj.read`` raised, unchanged (a storage
                problem is not a scanner problem).
        """
        reader = _ChunkReader(fileobj)
        try:
            result = self._client().instream(reader)  # type: ignore[arg-type]
        except _SourceReadError as exc:
            raise exc.original from None
        except BufferTooLongError as exc:
            raise ScannerUnavailable(
                f"clamd at {self.url} refused the stream after {reader.sent} bytes: "
                "larger than its StreamMaxLength; raise it to at least the upload limit"
            ) from exc
        except (TimeoutError, ClamdError, OSError) as exc:
            raise ScannerUnavailable(
                f"clamd at {self.url} gave no verdict ({type(exc).__name__}: {exc}) "
                f"after {reader.sent} bytes sent"
            ) from exc
        return _verdict_from(result, self.url)

    def scan_path(self, path: str) -> ScanVerdict:
        """Scan a local file by streaming it to clamd. Same contract as :meth:`scan_stream`."""
        with open(path, "rb") as fh:
            return self.scan_stream(fh)


def _verdict_from(result: dict, url: str) -> ScanVerdict:
    """Turn clamav_client's ``{"stream": (status, signature)}`` into a verdict."""
    if not result or "stream" not in result:
        raise ScannerUnavailable(f"clamd at {url} sent no verdict (answer {result!r})")
    status, detail = result["stream"]
    if status == "OK":
        return ScanVerdict(clean=True, signature=None)
    if status == "FOUND":
        return ScanVerdict(clean=False, signature=detail or "unknown signature")
    raise ScannerUnavailable(f"clamd at {url} could not scan the stream: {detail or status}")


def _parse_clamd_url(url: str) -> tuple[str, str | tuple[str, int]]:
    if not url:
        raise ValueError("empty clamd URL: expected unix:///path/clamd.sock or tcp://host:port")
    if url.startswith("/"):
        return "unix", url
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        if not path.startswith("/"):
            raise ValueError(f"clamd unix socket path must be absolute: {url!r}")
        return "unix", path
    if parsed.scheme == "tcp":
        if not parsed.hostname:
            raise ValueError(f"clamd URL has no host: {url!r}")
        return "tcp", (parsed.hostname, parsed.port or 3310)
    raise ValueError(
        f"unsupported clamd URL {url!r}: expected unix:///path/clamd.sock or tcp://host:port"
    )


def scan_stream(fileobj: BinaryIO, url: str, timeout: float = DEFAULT_TIMEOUT_S) -> ScanVerdict:
    """Scan a stream with the clamd at ``url``; shorthand for
    ``ClamdScanner(url, timeout).scan_stream(fileobj)`` (same returns and raises).
    """
    return ClamdScanner(url, timeout=timeout).scan_stream(fileobj)


def scanner_from_url(url: str, timeout: float = DEFAULT_TIMEOUT_S) -> ClamdScanner:
    """Build a :class:`ClamdScanner` from a ``CLAMD_URL`` value.

    Args:
        url: ``unix:///abs/path/clamd.sock`` or ``tcp://host:port``.
        timeout: socket timeout in seconds.

    Raises:
        ValueError: malformed URL.
    """
    return ClamdScanner(url, timeout=timeout)


# ------------------------------------------------------------------ signature databases

#: Databases older than this are reported stale (a warning on every staff page).
SIGNATURES_MAX_AGE = timedelta(days=7)
#: File name of drem's own test database (only the EICAR signature; scripts/clamd.sh).
TEST_DATABASE = "drem.ndb"
_DB_SUFFIXES = (".cvd", ".cld", ".cud", ".ndb", ".hdb", ".hsb", ".ldb", ".ign2", ".fp", ".sfp", ".yara")


@dataclass(frozen=True)
class SignatureDatabase:
    """One signature database file clamd loads.

    Attributes:
        name: the file name, e.g. ``daily.cvd`` or ``drem.ndb``.
        signatures: signatures it holds (the ``.cvd``/``.cld`` header, else lines).
        built_at: when it was built (the ``.cvd`` header), else the file's modification
            time; aware UTC.
    """

    name: str
    signatures: int
    built_at: datetime


@dataclass(frozen=True)
class SignatureStatus:
    """What clamd scans with, for the status page, ``drem doctor`` and the staff warning.

    Attributes:
        version: clamd's VERSION answer, e.g. ``"ClamAV 1.4.6/27500/Sun Nov 29 08:00:00 2026"``
            (just ``"ClamAV 1.4.6"`` when no official database is loaded); None when clamd
            did not answer.
        databases: the files in clamd's database folder when drem can read it (its own clamd
            from scripts/clamd.sh); empty otherwise.
        official_version: the official daily database version from VERSION, or None.
        official_built_at: that database's date from VERSION, or None.
        error: why clamd could not be asked, or None.
        warning: one sentence for staff when only the test signature is loaded, the
            databases are older than :data:`SIGNATURES_MAX_AGE` or clamd does not answer; else None.
    """

    version: str | None
    databases: tuple[SignatureDatabase, ...] = field(default_factory=tuple)
    official_version: int | None = None
    official_built_at: datetime | None = None
    error: str | None = None
    warning: str | None = None

    @property
    def total_signatures(self) -> int:
        """Signatures over every database file listed."""
        return sum(db.signatures for db in self.databases)


def read_database(path: Path) -> SignatureDatabase:
    """Describe one database file (see :class:`SignatureDatabase`). Raises OSError when
    it cannot be read."""
    stat = path.stat()
    built = datetime.fromtimestamp(stat.st_mtime, UTC)
    if path.suffix in (".cvd", ".cld", ".cud"):
        with path.open("rb") as fh:
            header = fh.read(512).decode("ascii", "replace").split(":")
        # ClamAV-VDB:<build time>:<version>:<signatures>:<functionality level>:<md5>:<dsig>:<builder>:<time>
        count = int(header[3]) if len(header) > 8 and header[3].isdigit() else 0
        if len(header) > 8 and header[8].strip().isdigit():
            built = datetime.fromtimestamp(int(header[8].strip()), UTC)
        return SignatureDatabase(path.name, count, built)
    with path.open("rb") as fh:
        count = sum(1 for line in fh if line.strip() and not line.startswith(b"#"))
    return SignatureDatabase(path.name, count, built)


def database_folder(clamd_url: str) -> Path | None:
    """clamd's ``DatabaseDirectory`` for a unix-socket clamd whose ``clamd.conf`` sits next
    to its socket (the layout of scripts/clamd.sh); None when it cannot be found."""
    try:
        kind, address = _parse_clamd_url(clamd_url)
    except ValueError:
        return None
    if kind != "unix":
        return None
    conf = Path(str(address)).parent / "clamd.conf"
    try:
        lines = conf.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split(None, 1)
        if len(words) == 2 and words[0] == "DatabaseDirectory":
            return Path(words[1].strip())
    return None


def _parse_version(answer: str) -> tuple[int | None, datetime | None]:
    parts = answer.strip().split("/")
    if len(parts) < 3 or not parts[1].isdigit():
        return None, None
    try:
        built = datetime.strptime(parts[2].strip(), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        try:
            built = parsedate_to_datetime(parts[2].strip())
        except (TypeError, ValueError):
            built = None
    return int(parts[1]), built


def signature_status(clamd_url: str, now: datetime | None = None, timeout: float = 3.0) -> SignatureStatus:
    """Ask clamd at ``clamd_url`` which signatures it scans with, and read its database folder
    when it is local. Never raises: a clamd that does not answer gives ``error`` and a warning.

    ``now`` (aware UTC, default the clock) decides staleness against
    :data:`SIGNATURES_MAX_AGE`.
    """
    now = now or datetime.now(UTC)
    folder = database_folder(clamd_url)
    databases: list[SignatureDatabase] = []
    if folder is not None and folder.is_dir():
        for entry in sorted(os.listdir(folder)):
            if entry.endswith(_DB_SUFFIXES):
                try:
                    databases.append(read_database(folder / entry))
                except OSError:
                    continue
    try:
        version = ClamdScanner(clamd_url, timeout=timeout).version()
        error = None
    except (ScannerUnavailable, ValueError) as exc:
        version, error = None, str(exc)
    official_version, official_built = _parse_version(version) if version else (None, None)
    official_files = [d for d in databases if d.name != TEST_DATABASE]
    if error:
        warning = f"The virus scanner does not answer ({error}); uploads wait unscanned."
    elif official_version is None and not official_files:
        warning = ("The virus scanner has only drem's test signature (EICAR): real viruses are NOT "
                   "detected. Run freshclam or copy the official .cvd files (docs/operations.md).")
    else:
        dates = [d.built_at for d in official_files] + ([official_built] if official_built else [])
        newest = max(dates) if dates else None
        if newest is not None and now - newest > SIGNATURES_MAX_AGE:
            warning = (f"The virus signatures are {(now - newest).days} days old (over "
                       f"{SIGNATURES_MAX_AGE.days}): update them (docs/operations.md).")
        else:
            warning = None
    return SignatureStatus(version=version, databases=tuple(databases), official_version=official_version,
                           official_built_at=official_built, error=error, warning=warning)


_CACHE_S = 60.0
_cache: dict[str, tuple[float, SignatureStatus]] = {}
_cache_lock = threading.Lock()


def cached_signature_status(clamd_url: str) -> SignatureStatus:
    """:func:`signature_status` at most once a minute per ``clamd_url`` in this process
    (every staff page shows its warning)."""
    with _cache_lock:
        hit = _cache.get(clamd_url)
        if hit is not None and time.monotonic() - hit[0] < _CACHE_S:
            return hit[1]
    status = signature_status(clamd_url, timeout=1.0)
    with _cache_lock:
        _cache[clamd_url] = (time.monotonic(), status)
    return status


def clear_signature_cache() -> None:
    """Forget cached statuses (after a database update, and in tests)."""
    with _cache_lock:
        _cache.clear()
