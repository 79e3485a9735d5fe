"""Public pages: the big-screen leaderboard, the stream overlay, the event landing page;
and the organizer's event import page (upload, preview, import).

The public pages need no login. The pages load their data over Socket.IO (``/leaderboard``, see
:mod:`drem.leaderboard.sockets`); the server renders only the frame, the titles and
the QR code (an SVG made here with the ``qrcode`` package, so nothing is fetched from
the internet).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from drem.events.service import get_event
from drem.leaderboard import i18n, imports, service
from drem.leaderboard.forms import ImportForm
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import int_arg
from drem.platform.permissions import public, require
from drem.platform.qr import qr_svg
from drem.platform.web import EmptyForm
from drem.race_queue.state import phone_view

bp = Blueprint("leaderboard", __name__, template_folder="templates")

LANGUAGES = i18n.LANGUAGES
LAYOUTS = ("full", "compact")
BACKGROUNDS = {"transparent": "transparent", "green": "#00b140", "magenta": "#ff00ff",
               "blue": "#0047bb", "black": "#000000"}


def _choice(name: str, allowed, default: str) -> str:
    value = (request.args.get(name) or "").lower()
    return value if value in allowed else default


def landing_url(event_id: int) -> str:
    """Absolute URL of the event's landing page (``PUBLIC_URL`` when set, else this host)."""
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    path = url_for("leaderboard.landing", event_id=event_id)
    return base + path if base else url_for("leaderboard.landing", event_id=event_id, _external=True)


def _page_args(event) -> dict:
    track = service.parse_track(event, request.args.get("track"))
    return {"event": event, "track": track, "tracks": event.tracks,
            "combined": len(event.tracks) >= 2, **_language()}


def _language() -> dict:
    """The page's language (``?lang=``, default English) and what its template needs:
    ``lang``, ``texts`` (its texts), ``all_texts`` (every language's, handed to the page's
    script so its switch needs no reload), ``t`` (one text), ``languages`` (the switch)."""
    lang = i18n.choose(request.args.get("lang"))
    return {"lang": lang, "texts": i18n.texts(lang), "languages": i18n.language_names(),
            "all_texts": {code: i18n.texts(code) for code in i18n.LANGUAGES},
            "t": lambda key, **values: i18n.t(lang, key, **values)}


@bp.get("/events/<int:event_id>/leaderboard")
@public
def board(event_id: int):
    """The big-screen leaderboard: ``?track=<id>|combined&lang=en|de|es|fr|ja&layout=full|compact
    &controls=0`` (hide the switches) ``&scroll=<px per s>`` (auto-scroll speed)."""
    event = get_event(event_id)
    args = _page_args(event)
    scroll = int_arg("scroll", 40, 0, 400)
    return render_template("leaderboard/board.html", layout=_choice("layout", LAYOUTS, "full"),
                           controls=request.args.get("controls") != "0", scroll=scroll,
                           landing=landing_url(event.id), **args)


@bp.get("/events/<int:event_id>/overlay")
@public
def overlay(event_id: int):
    """The OBS overlay: ``?track=<id>|combined&bg=transparent|green|magenta|blue|black
    &top=<N>&lang=en|de|es|fr|ja``: a lower third while a race runs, the top N between races."""
    event = get_event(event_id)
    bg = _choice("bg", BACKGROUNDS, "transparent")
    top = int_arg("top", 5, 1, 20)
    return render_template("leaderboard/overlay.html", background=BACKGROUNDS[bg], top=top,
                           **_page_args(event))


@bp.get("/e/<int:event_id>")
@public
def landing(event_id: int):
    """The event's public landing page: leaderboards, how to upload a model, the organizer's links."""
    event = get_event(event_id)
    return render_template("leaderboard/landing.html", event=event, landing=landing_url(event.id),
                           combined=len(event.tracks) >= 2, date=i18n.fmt_date(event.date, lang_of()),
                           queue=phone_view(db.session, event, current_user), **_language())


@bp.get("/e/<int:event_id>/queue/card")
@public
def queue_card(event_id: int):
    """The landing page's race-queue card alone (``?lang=``): the signed-in racer's place,
    waiting time and check-in; the page fetches it again on every ``queue_update``."""
    event = get_event(event_id)
    return render_template("race_queue/_phone_card.html", event=event,
                           queue=phone_view(db.session, event, current_user), **_language())


def lang_of() -> str:
    """The language of this request's ``?lang=`` (English when absent or unknown)."""
    return i18n.choose(request.args.get("lang"))


@bp.get("/events/<int:event_id>/commentator")
@require("races.view")
def commentator(event_id: int):
    """The commentator's page for ``?track=<id>`` (default: the first track)
    ``&lang=en|de|es|fr|ja``: the live race, positions, gaps, lap chart, previous runs,
    next racers, the track's top 10; data from ``/api/events/<id>/commentator``."""
    event = get_event(event_id)
    raw = request.args.get("track") or (str(event.tracks[0].id) if event.tracks else None)
    args = _page_args(event) if raw is None else {**_page_args(event), "track": service.parse_track(event, raw)}
    return render_template("leaderboard/commentator.html", **args)


@bp.get("/statistics")
@public
def statistics_all():
    """Public statistics over every event (``?lang=``); data from ``/api/events/statistics``."""
    return render_template("leaderboard/statistics.html", event=None, **_language())


@bp.get("/events/<int:event_id>/statistics")
@public
def statistics_event(event_id: int):
    """Public statistics of one event (``?lang=``); data from ``/api/events/<id>/statistics``."""
    return render_template("leaderboard/statistics.html", event=get_event(event_id), **_language())


@bp.get("/events/<int:event_id>/qr.svg")
@public
def qr(event_id: int):
    """An SVG QR code of the landing page's absolute URL."""
    event = get_event(event_id)
    return Response(qr_svg(landing_url(event.id)), mimetype="image/svg+xml", headers={"Cache-Control": "max-age=300"})


# ------------------------------------------------------------------- event import (organizer)

@bp.route("/events/import", methods=["GET", "POST"])
@require("events.manage")
def import_upload():
    """Upload an ``export.json``: kept for the preview (nothing imported yet)."""
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            staged = imports.stage_import(current_user, upload.read(), upload.filename)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("leaderboard/import.html", form=form), exc.status
        commit()
        return redirect(url_for("leaderboard.import_preview", staged_id=staged.id))
    return render_template("leaderboard/import.html", form=form), 400 if form.errors else 200


def _preview_page(staged, status: int = 200):
    return render_template("leaderboard/import_preview.html", staged=staged,
                           preview=imports.preview_import(staged.document), form=EmptyForm()), status


@bp.get("/events/import/<int:staged_id>")
@require("events.manage")
def import_preview(staged_id: int):
    """What the upload would import: event, tracks, racers, races, laps, conflicts, problems."""
    return _preview_page(imports.get_staged(current_user, staged_id))


@bp.post("/events/import/<int:staged_id>")
@require("events.manage")
def import_confirm(staged_id: int):
    """Import the staged upload (the API's ``import_event``): all of it or, on a problem,
    nothing."""
    staged = imports.get_staged(current_user, staged_id)
    if not EmptyForm().validate_on_submit():
        flash("the form expired; try again", "error")
        return _preview_page(staged, 400)
    try:
        event, counts = imports.import_staged(current_user, staged)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _preview_page(imports.get_staged(current_user, staged_id), exc.status)
    commit()
    flash(f"imported {event.name!r}: {counts['tracks']} track(s), {counts['racers']} racer(s) "
          f"({len(counts['created_users'])} new), {counts['races']} race(s), {counts['laps']} lap(s)", "info")
    return redirect(url_for("events.detail", event_id=event.id))


@bp.post("/events/import/<int:staged_id>/discard")
@require("events.manage")
def import_discard(staged_id: int):
    """Drop the staged upload without importing it."""
    staged = imports.get_staged(current_user, staged_id)
    if EmptyForm().validate_on_submit():
        imports.discard_staged(staged)
        commit()
        flash("upload discarded", "info")
    return redirect(url_for("leaderboard.import_upload"))
