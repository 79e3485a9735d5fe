"""The buttons of the racer's race-queue card on the event's landing page (``/e/<id>``):
join a track's queue, check in with a model, leave. Each posts a form (CSRF), calls the
same service function as ``/api/me/queue`` and goes back to the landing page's card.

The card itself is part of the landing page (``drem.leaderboard.views``, which also serves
it alone for the page's live refresh), in the page's language."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import current_user

from drem.events.service import get_event
from drem.platform.errors import NotFound
from drem.platform.inputs import record_id
from drem.platform.permissions import require
from drem.platform.web import form_action
from drem.race_queue import service

bp = Blueprint("race_queue", __name__, template_folder="templates")


def _back(event_id: int) -> str:
    lang = request.args.get("lang")
    return url_for("leaderboard.landing", event_id=event_id, **({"lang": lang} if lang else {})) + "#queue"


@bp.post("/e/<int:event_id>/queue/join")
@require("queue.join")
def join(event_id: int):
    """Join the queue of the form's ``track_id`` (a track of this event)."""
    event = get_event(event_id)

    def change():
        track_id = record_id(request.form, "track_id")
        if not any(t.id == track_id for t in event.tracks):
            raise NotFound("no such track at this event")
        service.join_queue(current_user, track_id)

    return form_action(change, "You are in the queue. Check in when you are at the track.", _back(event.id))


@bp.post("/e/<int:event_id>/queue/check-in")
@require("queue.join")
def check_in(event_id: int):
    """Check in the form's ``entry_id`` (one's own) with ``model_id`` (empty: no model)."""
    get_event(event_id)
    return form_action(lambda: service.check_in(current_user, record_id(request.form, "entry_id"),
                                                record_id(request.form, "model_id", required=False)),
                       "Checked in. Watch this page: it tells you when you are called.", _back(event_id))


@bp.post("/e/<int:event_id>/queue/leave")
@require("queue.join")
def leave(event_id: int):
    """Leave the queue of the form's ``entry_id`` (one's own)."""
    get_event(event_id)
    return form_action(lambda: service.remove_entry(current_user, record_id(request.form, "entry_id")),
                       "You left the queue.", _back(event_id))
