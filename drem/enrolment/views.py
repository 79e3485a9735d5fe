"""Enrolment pages: the registration desk (new racer, enrolled and printed in one step),
new sign-in codes, and bulk enrolment from a CSV file with printable slips."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from drem.auth import service as accounts
from drem.enrolment import csv_import
from drem.enrolment.forms import CsvImportForm, CsvUploadForm, DeskForm
from drem.enrolment.service import enrol_by_name, sign_in_code_for_slip
from drem.events.service import default_event, get_event, open_events
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import record_id
from drem.platform.permissions import require
from drem.platform.qr import qr_svg
from drem.platform.web import EmptyForm

bp = Blueprint("enrolment", __name__, template_folder="templates")


@bp.route("/desk", methods=["GET", "POST"])
@require("racers.register")
def desk():
    """New racer: create (or find, see :mod:`drem.enrolment.service`), enrol in the chosen
    open event, and print the slip with the sign-in code and its QR code."""
    form = DeskForm()
    events = open_events()
    form.event_id.choices = [(str(e.id), f"{e.name} ({e.date.isoformat()})") for e in events] + [
        ("", "no event (account only)")]
    if request.method == "GET":
        chosen = default_event(events)
        form.event_id.data = str(chosen.id) if chosen else ""
    if form.validate_on_submit():
        try:
            event_id = record_id(request.form, "event_id", required=False)  # blank: account only
            event = get_event(event_id) if event_id is not None else None
            if event is not None:
                racer = enrol_by_name(current_user, event, form.username.data, form.country_code.data,
                                      form.email.data).racer
            else:
                racer = accounts.create_user(form.username.data, None, email=form.email.data,
                                             country_code=form.country_code.data, actor=current_user,
                                             country_required=True)
            code = sign_in_code_for_slip(current_user, racer, _code_ttl())
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            commit()
            return render_template("enrolment/slip.html", slips=[slip(racer, code, event)], ttl_h=_code_ttl_h())
    racers = accounts.list_users(role="racer", newest_first=True, limit=50)
    return render_template("enrolment/desk.html", form=form, racers=racers, code_form=EmptyForm(),
                           events=events)


@bp.post("/desk/racers/<int:user_id>/code")
@require("racers.register")
def new_code(user_id: int):
    """A new one-time sign-in code for a racer, printed on a slip (earlier codes stop working)."""
    racer = accounts.get_user(user_id)
    if not EmptyForm().validate_on_submit():
        flash("the form expired; try again", "error")
        return redirect(url_for("enrolment.desk"))
    try:
        code = accounts.create_sign_in_code(racer, current_user, _code_ttl())
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("enrolment.desk"))
    commit()
    return render_template("enrolment/slip.html", slips=[slip(racer, code, None)], ttl_h=_code_ttl_h())


@bp.route("/events/<int:event_id>/enrol/csv", methods=["GET", "POST"])
@require("racers.enrol")
def csv_enrol(event_id: int):
    """Bulk enrolment: upload a CSV (preview with an error per row), then "Import" enrols
    every row or none and prints a page of slips."""
    event = get_event(event_id)
    upload, confirm = CsvUploadForm(), CsvImportForm(prefix="import")
    rows, status = None, 200
    if request.method == "POST" and "import-csv" in request.form:
        if confirm.validate_on_submit():
            return _import(event, confirm.csv.data or "")
        flash("the form expired; upload the file again", "error")
    elif upload.validate_on_submit():
        raw = upload.file.data.read(csv_import.MAX_CSV_BYTES + 1) if upload.file.data else b""
        try:
            rows = csv_import.preview_csv(event, raw)
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            confirm.csv.data = raw.decode("utf-8-sig")
    elif request.method == "POST":
        flash("the form expired; try again", "error")
    return _csv_page(event, upload, confirm, rows), status


def _csv_page(event, upload, confirm, rows):
    return render_template("enrolment/csv.html", event=event, upload=upload, confirm=confirm, rows=rows,
                           bad=sum(1 for r in rows or () if r.error),
                           max_rows=csv_import.MAX_CSV_ROWS, max_kib=csv_import.MAX_CSV_BYTES // 1024)


def _import(event, data: str):
    try:
        enrolments = csv_import.import_csv(current_user, event, data)
        slips = [slip(e.racer, sign_in_code_for_slip(current_user, e.racer, _code_ttl()), event) for e in enrolments]
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        rows, confirm = None, CsvImportForm(prefix="import")
        try:
            rows = csv_import.preview_csv(event, data)  # the rows as they are now, with their errors
            confirm.csv.data = data
        except ServiceError:
            pass
        return _csv_page(event, CsvUploadForm(), confirm, rows), exc.status
    commit()
    created = sum(1 for e in enrolments if e.created)
    flash(f"{len(enrolments)} racer(s) enrolled in {event.name} ({created} new account(s))", "info")
    return render_template("enrolment/slip.html", slips=slips, ttl_h=_code_ttl_h())


def sign_in_url(code: str) -> str:
    """The absolute sign-in link a slip's QR code encodes: ``PUBLIC_URL`` (else this host)
    + ``/login?code=XXXX-XXXX`` (the login page fills the code in; it is used on "Sign in")."""
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    path = url_for("auth.login", code=code)
    return base + path if base else url_for("auth.login", code=code, _external=True)


def slip(racer, code: str | None, event) -> dict:
    """What one printed slip shows: ``{"racer", "event" (or None), "code" (or None: the
    racer signs in with their password), "url" (sign-in link), "qr" (inline SVG)}``."""
    url = sign_in_url(code) if code else None
    return {"racer": racer, "event": event, "code": code, "url": url, "qr": qr_svg(url, box_size=8) if url else None}


def _code_ttl_h() -> int:
    return current_app.config["SIGN_IN_CODE_TTL_H"]


def _code_ttl() -> timedelta:
    return timedelta(hours=_code_ttl_h())
