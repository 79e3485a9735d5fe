"""Leaderboard and results JSON API (see docs/api.md, "Leaderboard and results")."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request, url_for
from flask_login import current_user

from drem.events.service import get_event
from drem.leaderboard import commentator, export, i18n, imports, pdf_reports, service, statistics
from drem.platform.effects import commit
from drem.platform.inputs import id_arg
from drem.platform.permissions import public, require
from drem.platform.web import json_body

bp = Blueprint("leaderboard_api", __name__, url_prefix="/api/events")


@bp.get("/<int:event_id>/leaderboard")
@public
def leaderboard(event_id: int):
    """The full leaderboard state of ``?track=<id>|combined`` (public; times in ms)."""
    event = get_event(event_id)
    return jsonify(service.leaderboard_state(event, service.parse_track(event, request.args.get("track"))))


@bp.get("/<int:event_id>/commentator")
@require("races.view")
def commentator_state(event_id: int):
    """The commentator's view of ``?track=<id>``: live race with every lap, position,
    gaps, previous runs, next racers, top 10 (see ``commentator.commentator_state``)."""
    event = get_event(event_id)
    return jsonify(commentator.commentator_state(event, service.parse_track(event, request.args.get("track"))))


@bp.get("/<int:event_id>/races/<int:race_id>/summary")
@public
def run_summary(event_id: int, race_id: int):
    """One run's result on its leaderboard (public, like the leaderboard): position before
    and after, gap, best lap, laps, resets."""
    return jsonify(commentator.run_summary(get_event(event_id), race_id))


@bp.get("/statistics")
@public
def statistics_all():
    """Statistics over every event (public)."""
    return jsonify(statistics.event_statistics(None))


@bp.get("/<int:event_id>/statistics")
@public
def statistics_event(event_id: int):
    """Statistics of one event (public)."""
    return jsonify(statistics.event_statistics(get_event(event_id)))


def _pdf(event, kind: str, body: bytes, paper: str) -> Response:
    name = export.export_filename(event, f"{kind}-{paper.lower()}.pdf")
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _car_url(car) -> str:
    return url_for("fleet.cars", _external=True, _anchor=f"car-{car.id}")


@bp.get("/<int:event_id>/<any(results, podium, certificates, labels):kind>.pdf")
@require("events.view")
def results_pdf(event_id: int, kind: str):
    """The event's results, podium, certificates (``&racer=<id>`` for one) or car labels as
    PDF: ``?paper=a4|letter&lang=en|de|es|fr|ja``. 400 for another paper size."""
    event = get_event(event_id)
    paper = pdf_reports.paper(request.args.get("paper"))
    lang = i18n.choose(request.args.get("lang"))
    if kind == "results":
        body = pdf_reports.results_pdf(event, paper, lang)
    elif kind == "podium":
        body = pdf_reports.podium_pdf(event, paper, lang)
    elif kind == "certificates":
        body = pdf_reports.certificates_pdf(event, paper, lang, racer_id=id_arg("racer"))
    else:
        body = pdf_reports.labels_pdf(pdf_reports.event_cars(event), _car_url, paper, lang)
    return _pdf(event, kind, body, paper)


@bp.get("/<int:event_id>/my-certificate.pdf")
@require("account.self")
def my_certificate(event_id: int):
    """The signed-in racer's own certificate of the event (``?paper=a4|letter&lang=``);
    404 when they have no result there."""
    event = get_event(event_id)
    paper = pdf_reports.paper(request.args.get("paper"))
    body = pdf_reports.certificates_pdf(event, paper, i18n.choose(request.args.get("lang")),
                                        racer_id=current_user.id)
    return _pdf(event, "certificate", body, paper)


def _download(body: str, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


@bp.get("/<int:event_id>/laps.csv")
@require("events.view")
def laps_csv(event_id: int):
    event = get_event(event_id)
    return _download(export.laps_csv(event), "text/csv", export.export_filename(event, "laps.csv"))


@bp.get("/<int:event_id>/racers.csv")
@require("events.view")
def racers_csv(event_id: int):
    event = get_event(event_id)
    return _download(export.racers_csv(event), "text/csv", export.export_filename(event, "racers.csv"))


@bp.get("/<int:event_id>/export.json")
@require("events.view")
def export_json(event_id: int):
    event = get_event(event_id)
    return _download(json.dumps(export.export_event(event), indent=1), "application/json",
                     export.export_filename(event, "export.json"))


@bp.post("/import")
@require("events.manage")
def import_json():
    """An ``export.json`` document -> ``201 {event, tracks, racers, created_users, races, laps}``;
    400 listing every problem (nothing is created then)."""
    event, counts = imports.import_event(current_user, json_body())
    commit()
    return jsonify(event=event.to_dict(), **counts), 201


@bp.post("/import/preview")
@require("events.manage")
def import_preview():
    """An ``export.json`` document -> what importing it would do (nothing changes):
    ``{problems, conflicts, event, tracks, racers, new_racers, existing_racers, races,
    skipped_races, live_races, laps}``."""
    return jsonify(imports.preview_import(json_body()))
