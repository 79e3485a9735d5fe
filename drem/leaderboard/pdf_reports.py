"""Printable results as PDF, rendered with WeasyPrint from the templates in
``templates/leaderboard/pdf/``: the organiser's results (every track, then the combined
board; with laps, resets and penalties), the podium, a certificate per racer (or all in
one file) and car labels with a QR code to the car's page.

Fonts: DejaVu Sans from Debian ``fonts-dejavu-core`` (:data:`FONT_DIR`), loaded by
``@font-face`` from the local file, so nothing is fetched at render time. Paper: A4 or
Letter (:data:`PAPER`). Texts in the languages of :mod:`drem.leaderboard.i18n`; Japanese
glyphs come from Debian ``fonts-ipafont-gothic`` (or ``fonts-noto-cjk``) through
fontconfig, see docs/operations.md.

Penalties: the results list per racer the penalised laps (invalidated, DNF or over the
resets allowed per lap), the time penalties included in the racer's times
(``RacerSummary.penalty_ms``, docs/ranking.md "Penalties and disqualification") and the
disqualified runs.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import render_template

from drem.events.models import COUNTED, Event, Lap, Race
from drem.events.rules import lap_is_valid
from drem.fleet.models import Car
from drem.leaderboard import i18n, service
from drem.leaderboard.loading import COMBINED
from drem.platform.errors import NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.qr import qr_svg

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
PAPER = {"a4": "A4", "letter": "letter"}
KINDS = ("results", "podium", "certificates", "labels")


def paper(value: str | None) -> str:
    """The CSS page size for ``?paper=a4|letter`` (default A4); ServiceError otherwise."""
    key = (value or "a4").lower()
    if key not in PAPER:
        raise ServiceError(f"paper must be one of {', '.join(PAPER)}")
    return PAPER[key]


def _boards(event: Event, lang: str) -> list[tuple[str, object]]:
    boards: list[tuple[str, object]] = [(t.name, t.id) for t in event.tracks]
    if len(event.tracks) >= 2:
        boards.append((i18n.t(lang, "combined"), COMBINED))
    return boards


def _lap_counts(event: Event) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Resets and penalised laps (invalidated, DNF or over the resets limit: not
    ``lap_is_valid``) per (racer id, track id) over the counted races; one query."""
    resets: dict[tuple[int, int], int] = {}
    penalties: dict[tuple[int, int], int] = {}
    allowed = event.resets_allowed_per_lap
    rows = db.session.execute(
        sa.select(Race.racer_id, Race.track_id, Lap.resets, Lap.invalidated, Lap.dnf)
        .join(Lap, Lap.race_id == Race.id).where(Race.event_id == event.id, Race.status.in_(COUNTED)))
    for racer_id, track_id, lap_resets, invalidated, dnf in rows:
        key = (racer_id, track_id)
        resets[key] = resets.get(key, 0) + lap_resets
        if not lap_is_valid(invalidated, dnf, lap_resets, allowed):
            penalties[key] = penalties.get(key, 0) + 1
    return resets, penalties


def _result_tables(event: Event, lang: str) -> list[dict]:
    """Per board: ``{"name", "rows": [{rank, username, country, value, gap, best, laps,
    valid, resets, penalties, penalty_ms, disqualified, runs}]}`` (times as ms;
    ``penalties`` counts penalised laps, ``penalty_ms`` is the time penalties, ``disqualified``
    the disqualified runs)."""
    resets, penalties = _lap_counts(event)
    tables = []
    for name, key in _boards(event, lang):
        rows = []
        for e in service.entries(event, key):
            tracks = [t.id for t in event.tracks] if key == COMBINED else [key]
            rows.append({"rank": e.rank, "username": e.username, "country": e.country or "",
                         "value": e.ranking_value_ms, "gap": e.gap_to_leader_ms,
                         "best": e.summary.best_lap_ms, "laps": e.summary.total_laps,
                         "valid": e.summary.valid_laps, "runs": e.summary.runs,
                         "resets": sum(resets.get((e.racer_id, t), 0) for t in tracks),
                         "penalties": sum(penalties.get((e.racer_id, t), 0) for t in tracks),
                         "penalty_ms": e.summary.penalty_ms, "disqualified": e.summary.disqualified_runs})
        tables.append({"name": name, "rows": rows})
    return tables


def _font_css() -> str:
    faces = []
    for weight, file in (("normal", "DejaVuSans.ttf"), ("bold", "DejaVuSans-Bold.ttf")):
        faces.append(f'@font-face {{ font-family: "DejaVu Sans"; font-weight: {weight}; '
                     f'src: url("file://{FONT_DIR / file}"); }}')
    faces.append(f'@font-face {{ font-family: "DejaVu Sans Mono"; '
                 f'src: url("file://{FONT_DIR / "DejaVuSansMono.ttf"}"); }}')
    return "\n".join(faces)


def _render(template: str, page: str, lang: str, **context) -> bytes:
    """HTML from ``template`` to PDF bytes (imported here: WeasyPrint loads Pango, about
    0.3 s, which only the PDF downloads need)."""
    import weasyprint  # heavy optional dependency: only the PDF downloads load Pango

    def fmt(ms):
        return i18n.fmt_ms(ms, lang)

    html = render_template(template, page=page, lang=lang, fonts=_font_css(), fmt=fmt,
                           t=lambda key, **kw: i18n.t(lang, key, **kw), **context)
    return weasyprint.HTML(string=html, base_url=str(FONT_DIR)).write_pdf()


def _common(event: Event, lang: str) -> dict:
    return {"event": event, "date": i18n.fmt_date(event.date, lang),
            "printed": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def results_pdf(event: Event, page: str = "A4", lang: str = "en") -> bytes:
    """The organiser's results: one table per track, then the combined board (2+ tracks),
    with rank, racer, country, ranking value, gap, best lap, laps (valid/total), resets,
    penalised laps and runs."""
    return _render("leaderboard/pdf/results.html", page, lang, tables=_result_tables(event, lang),
                   method=event.ranking_method, **_common(event, lang))


def podium_pdf(event: Event, page: str = "A4", lang: str = "en") -> bytes:
    """One podium page per board: the first three with their ranking values."""
    podiums = [{"name": t["name"], "rows": t["rows"][:3]} for t in _result_tables(event, lang)]
    return _render("leaderboard/pdf/podium.html", page, lang, podiums=podiums, **_common(event, lang))


def certificates_pdf(event: Event, page: str = "A4", lang: str = "en", racer_id: int | None = None) -> bytes:
    """A certificate per racer on the first track's board (the combined board for 2+
    tracks), one per page; ``racer_id`` for one racer only (NotFound if not ranked)."""
    key = COMBINED if len(event.tracks) >= 2 else (event.tracks[0].id if event.tracks else None)
    entries = service.entries(event, key) if key is not None else []
    if racer_id is not None:
        entries = [e for e in entries if e.racer_id == racer_id]
        if not entries:
            raise NotFound("this racer has no result at this event")
    count = len(service.entries(event, key)) if key is not None else 0
    certs = [{"username": e.username, "country": e.country or "", "rank": e.rank, "count": count,
              "value": e.ranking_value_ms, "best": e.summary.best_lap_ms} for e in entries]
    return _render("leaderboard/pdf/certificates.html", page, lang, certificates=certs, **_common(event, lang))


def _qr_data_uri(url: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(url, border=1).encode()).decode()


def labels_pdf(cars: list[Car], car_url, page: str = "A4", lang: str = "en") -> bytes:
    """Printable car labels, 8 per page: hostname, fleet and a QR code of ``car_url(car)``
    (the car's page)."""
    labels = [{"hostname": c.hostname, "fleet": c.fleet.name if c.fleet else "", "id": c.id,
               "url": car_url(c), "qr": _qr_data_uri(car_url(c))} for c in cars]
    return _render("leaderboard/pdf/labels.html", page, lang, labels=labels)


def event_cars(event: Event) -> list[Car]:
    """The cars that raced at the event, else every car (a label sheet before the first run)."""
    ids = {cid for (cid,) in db.session.execute(
        sa.select(Race.car_id).where(Race.event_id == event.id, Race.car_id.is_not(None)).distinct())}
    q = sa.select(Car).order_by(Car.hostname, Car.id)
    if ids:
        q = q.where(Car.id.in_(ids))
    return list(db.session.scalars(q))
