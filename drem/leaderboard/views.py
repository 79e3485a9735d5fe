"""Public pages: the big-screen leaderboard, the stream overlay, the event landing page.

No login. The pages load their data over Socket.IO (``/leaderboard``, see
:mod:`drem.leaderboard.sockets`); the server renders only the frame, the titles and
the QR code (an SVG made here with the ``qrcode`` package, so nothing is fetched from
the internet).
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, current_app, render_template, request, url_for

from drem.events.service import get_event
from drem.leaderboard import service
from drem.platform.inputs import int_arg
from drem.platform.permissions import public

bp = Blueprint("leaderboard", __name__, template_folder="templates")

LANGUAGES = ("en", "de")
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
    lang = _choice("lang", LANGUAGES, "en")
    return {"event": event, "track": track, "lang": lang, "tracks": event.tracks,
            "combined": len(event.tracks) >= 2}


@bp.get("/events/<int:event_id>/leaderboard")
@public
def board(event_id: int):
    """The big-screen leaderboard: ``?track=<id>|combined&lang=en|de&layout=full|compact
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
    &top=<N>&lang=en|de``: a lower third while a race runs, the top N between races."""
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
                           combined=len(event.tracks) >= 2)


@bp.get("/events/<int:event_id>/qr.svg")
@public
def qr(event_id: int):
    """An SVG QR code of the landing page's absolute URL."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    event = get_event(event_id)
    img = qrcode.make(landing_url(event.id), image_factory=SvgPathImage, border=2, box_size=10)
    out = io.BytesIO()
    img.save(out)
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "max-age=300"})
