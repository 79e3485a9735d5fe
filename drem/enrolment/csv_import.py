"""Bulk enrolment from a CSV file: a preview with an error per row, then an import that
enrols every row or none.

The file: UTF-8 (a BOM is fine), comma- or semicolon-separated, a header row naming the
columns ``name`` (or ``username``) and ``country`` (or ``country_code``), optionally
``email``; other columns are ignored. ``country`` is an ISO 3166-1 code (``DE``,
``DEU``) or an English country name (``Germany``). At most :data:`MAX_CSV_BYTES` and
:data:`MAX_CSV_ROWS` racers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from drem.auth.service import EMAIL_RE, check_username
from drem.enrolment.service import Enrolment, enrol_by_name, match_existing
from drem.events.models import Event, EventRacer
from drem.platform.countries import check_country
from drem.platform.errors import Conflict, ServiceError
from drem.platform.extensions import db

MAX_CSV_BYTES = 64 * 1024
MAX_CSV_ROWS = 300
COLUMNS = {"name": ("name", "username"), "country": ("country", "country_code"), "email": ("email", "e-mail")}


@dataclass
class CsvRow:
    """One racer of the file: its line number, values as read (country as an ISO code once
    checked), and either ``error`` (what is wrong) or ``note`` (what the import will do)."""

    line: int
    name: str
    country: str
    email: str
    country_code: str | None = None
    error: str | None = None
    note: str = ""


def read_csv(data: bytes | str) -> list[CsvRow]:
    """Split a CSV file into rows (no checks of the values yet).

    Raises ServiceError for a file over :data:`MAX_CSV_BYTES`, not UTF-8, without a header
    naming ``name`` and ``country``, with no racer, or with more than :data:`MAX_CSV_ROWS`.
    """
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_CSV_BYTES:
        raise ServiceError(f"the file is larger than {MAX_CSV_BYTES // 1024} KiB; split it", "file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError("the file is not UTF-8 text; save it as CSV UTF-8", "file") from None
    lines = text.splitlines()
    if not lines:
        raise ServiceError("the file is empty; it needs a header row: name,country,email", "file")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    where = {key: next((header.index(n) for n in names if n in header), None) for key, names in COLUMNS.items()}
    if where["name"] is None or where["country"] is None:
        raise ServiceError("the header row must name the columns name and country (and optionally email)", "file")
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        if len(rows) >= MAX_CSV_ROWS:
            raise ServiceError(f"the file has more than {MAX_CSV_ROWS} racers; split it", "file")

        def cell(key: str, values=values) -> str:
            index = where[key]
            return values[index].strip() if index is not None and index < len(values) else ""

        rows.append(CsvRow(reader.line_num, cell("name"), cell("country"), cell("email")))
    if not rows:
        raise ServiceError("the file has a header but no racers", "file")
    return rows


def preview_csv(event: Event, data: bytes | str) -> list[CsvRow]:
    """The file's rows, each with its ``error`` or a ``note``; writes nothing.

    Row errors: empty or malformed name, unknown country, bad e-mail, a name repeated in
    the file (case-insensitive), a name taken by a staff account or by a racer with
    another country or e-mail. A name of an existing racer is enrolled, not duplicated.
    Raises ServiceError for a file that cannot be read (:func:`read_csv`) and Conflict
    when the event's enrolment is closed.
    """
    if not event.enrolment_open:
        raise Conflict(f"enrolment for {event.name} is closed", "event_id")
    rows = read_csv(data)
    enrolled = set(db.session.scalars(db.select(EventRacer.user_id).where(EventRacer.event_id == event.id)))
    first_line: dict[str, int] = {}
    for row in rows:
        try:
            row.name = check_username(row.name) if row.name else ""
            if not row.name:
                raise ServiceError("the name is empty")
            key = row.name.lower()
            if key in first_line:
                raise ServiceError(f"the name {row.name!r} is already on line {first_line[key]}")
            first_line[key] = row.line
            row.country_code = check_country(row.country, "country", required=True, names=True)
            if row.email and not EMAIL_RE.match(row.email):
                raise ServiceError("that e-mail address does not look right")
            existing = match_existing(row.name, row.country_code, row.email or None)
        except ServiceError as exc:
            row.error = exc.message
            continue
        if existing is None:
            row.note = "new racer"
        elif existing.id in enrolled:
            row.note = "existing racer, already enrolled"
        else:
            row.note = "existing racer: will be enrolled"
    return rows


def import_csv(actor, event: Event, data: bytes | str) -> list[Enrolment]:
    """Enrol every racer of the file (creating the new ones), all or nothing: the caller
    commits once, and rolls back on any error. Returns one :class:`Enrolment` per row, in
    file order. Raises ServiceError naming the number of bad rows when the preview has any
    (nothing is written), or the error of the row that failed while importing.
    """
    rows = preview_csv(event, data)
    bad = [r for r in rows if r.error]
    if bad:
        raise ServiceError(f"{len(bad)} row(s) have errors (first: line {bad[0].line}: {bad[0].error}); "
                           "nothing was imported", "file")
    return [enrol_by_name(actor, event, r.name, r.country_code, r.email or None) for r in rows]
