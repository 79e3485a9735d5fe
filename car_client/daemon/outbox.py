"""The durable outbox (protocol section 4) and the car's append-only lap log.

Shared with the lap timer (``car_client.timer``), whose outbox holds ``crossing`` entries.

Outbox: a SQLite file (``outbox.sqlite`` in the data dir, WAL, synchronous FULL).
Each entry has an id made on the car (uuid4 hex; for a lap it is the ``lap_id``,
for a command result the ``result_id``), a kind (``lap`` | ``command_result``), a
JSON payload and its creation time. Entries are sent oldest first and deleted only
when the server acknowledges them with ``ok: true``.

Refusals (``ok: false``): an entry the server refuses is retried later with a
growing delay, so it never blocks the entries behind it. The ack may carry
``"retry": false`` (permanent: dropped at once) or ``"retry": true`` (transient:
retried for ever); without it the entry is dropped after :data:`MAX_REFUSALS`
refusals. Dropped entries move to the ``rejected`` table (kept for inspection,
never resent) and are logged. Timeouts and disconnects are not refusals: the entry
simply stays.

Lap log: ``laps.jsonl``, one JSON object per lap the car drove, flushed and
fsynced per line; it is never trimmed, so it can be compared with the server's
leaderboard after a fault drill.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

KINDS = ("lap", "command_result")  # the car's kinds; the lap timer's outbox holds ("crossing",)
MAX_REFUSALS = 5
REFUSAL_DELAY_MAX_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ({kinds})),
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    refusals INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    rejected_at REAL NOT NULL,
    error TEXT
);
"""


@dataclass(frozen=True)
class Entry:
    """One outbox entry. ``payload`` is the decoded JSON object sent to the server."""

    id: str
    kind: str
    payload: dict
    created_at: float
    refusals: int = 0


def new_id() -> str:
    """A fresh id made on the car (uuid4 hex, 32 characters)."""
    return uuid.uuid4().hex


class Outbox:
    """The SQLite outbox at ``path``; safe to use from several threads.

    Several processes may open the same file (SQLite locking); the daemon is the
    only sender. ``kinds``: the entry kinds this outbox holds (default :data:`KINDS`, the
    car's; the lap timer uses ``("crossing",)``).
    """

    def __init__(self, path: str | os.PathLike, kinds: tuple[str, ...] = KINDS) -> None:
        if not kinds or not all(k.isidentifier() for k in kinds):
            raise ValueError(f"outbox kinds must be plain words, got {kinds!r}")
        self.path = Path(path)
        self.kinds = tuple(kinds)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=10.0, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA.replace("{kinds}", ", ".join(f"'{k}'" for k in self.kinds)))
        self._added = threading.Condition(self._lock)

    def put(self, kind: str, payload: dict, entry_id: str | None = None) -> str:
        """Store an entry durably (committed before returning) and return its id.

        ``kind``: one of this outbox's kinds (the car's: ``lap`` or ``command_result``);
        ``payload``: JSON-serialisable dict. An existing ``entry_id`` is kept as it is
        (the put is idempotent). Raises ValueError for an unknown kind.
        """
        if kind not in self.kinds:
            raise ValueError(f"unknown outbox kind {kind!r}")
        entry_id = entry_id or new_id()
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (id, kind, payload, created_at) VALUES (?,?,?,?)",
                (entry_id, kind, text, time.time()),
            )
            self._added.notify_all()
        return entry_id

    def wait_for_entries(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` seconds or until something is put."""
        with self._lock:
            self._added.wait(timeout_s)

    def notify(self) -> None:
        """Wake threads blocked in :meth:`wait_for_entries` (e.g. on connect or stop)."""
        with self._lock:
            self._added.notify_all()

    def ready(self, limit: int = 50, now: float | None = None) -> list[Entry]:
        """Up to ``limit`` entries due for sending, oldest first."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, payload, created_at, refusals FROM outbox "
                "WHERE next_attempt_at <= ? ORDER BY seq LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Entry(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def all(self) -> list[Entry]:
        """Every entry waiting, oldest first (including ones waiting after a refusal)."""
        return self.ready(limit=1_000_000, now=float("inf"))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def delete(self, entry_id: str) -> None:
        """Remove an entry the server acknowledged with ``ok: true``."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

    def refused(self, entry_id: str, error: str, retry: bool | None = None) -> bool:
        """Record an ``ok: false`` answer; return True if the entry was dropped.

        ``retry``: the ack's ``retry`` field (None when absent; see the module doc).
        A kept entry waits ``2**refusals`` seconds (at most 60) before its next try.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT kind, payload, created_at, refusals FROM outbox WHERE id = ?",
                (entry_id,),
            ).fetchone()
            if row is None:
                return False
            refusals = row[3] + 1
            drop = retry is False or (retry is None and refusals >= MAX_REFUSALS)
            if drop:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT OR REPLACE INTO rejected VALUES (?,?,?,?,?,?)",
                    (entry_id, row[0], row[1], row[2], time.time(), error),
                )
                self._db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))
                self._db.execute("COMMIT")
            else:
                delay = min(REFUSAL_DELAY_MAX_S, 2.0**refusals)
                self._db.execute(
                    "UPDATE outbox SET refusals = ?, next_attempt_at = ?, last_error = ? "
                    "WHERE id = ?",
                    (refusals, time.time() + delay, error, entry_id),
                )
        if drop:
            log.error("server refused %s %s for good (%s): dropped from the outbox", row[0],
                      entry_id, error)
        else:
            log.warning("server refused %s %s (%s): retry %d later", row[0], entry_id, error,
                        refusals)
        return drop

    def rejected(self) -> list[dict]:
        """Entries dropped after a permanent refusal: ``{id, kind, payload, error}``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, payload, error FROM rejected ORDER BY rejected_at"
            ).fetchall()
        return [{"id": r[0], "kind": r[1], "payload": json.loads(r[2]), "error": r[3]}
                for r in rows]

    def close(self) -> None:
        """Close the database (entries are already committed)."""
        with self._lock:
            self._db.close()


class LapLog:
    """Append-only JSON-lines log of every lap the car drove (``laps.jsonl``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        """Append one lap record as a JSON line, flushed and fsynced."""
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict]:
        """All lap records in the order they were driven (an unfinished last line is skipped)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
