"""Small helpers shared by the HTML pages and the JSON APIs: the JSON body, CSRF
marks, the CSRF-only form, the post-redirect handler of page buttons, and the sign-in
rate limits."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm

from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db, limiter


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (page buttons that post; fields, if any, are read
    by the view with :mod:`drem.platform.inputs` and checked by the services)."""


def json_body() -> dict:
    """The request's JSON object; ServiceError when the body is not a JSON object, 413 when a
    body without ``Content-Length`` (chunked) reached the route's size cap while read."""
    cap = request.max_content_length
    if cap is not None and len(request.get_data(cache=True)) >= cap:
        abort(413)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError("send a JSON object with Content-Type: application/json")
    return data


def no_csrf(view):
    """Mark a JSON endpoint that carries its own credentials (password, code or car token in
    the body) and grants nothing through the session cookie, so CSRF does not apply."""
    view.csrf_exempt = True
    return view


def form_action(change, ok: str, target: str):
    """Handle a page button that posts: check its CSRF token, run ``change()`` (a service
    call), commit and flash ``ok``, or roll back and flash the ServiceError; then redirect
    to ``target``."""
    if not EmptyForm().validate_on_submit():
        flash("the form expired; try again", "error")
    else:
        try:
            change()
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            commit()
            flash(ok, "info")
    return redirect(target)


def client_address(req=None) -> str | None:
    """The client's IP address for a request or a Socket.IO connection (``req``, default the
    current request).

    With ``PROXY_HOPS`` = n, the n-th ``X-Forwarded-For`` value from the right (what the
    trusted proxy saw, as ProxyFix reads it); otherwise the socket's peer. A client cannot
    choose its address by sending the header itself: with no trusted proxy the header is
    ignored, and behind one only the proxy's own entry is read. Socket.IO connections are
    answered outside ProxyFix, so their handlers must use this instead of ``remote_addr``.
    """
    req = req or request
    hops = current_app.config.get("PROXY_HOPS") or 0
    peer = req.remote_addr or None
    if hops:
        values = [v.strip() for v in req.headers.get("X-Forwarded-For", "").split(",") if v.strip()]
        if len(values) >= hops:
            return values[-hops][:45]
    return peer[:45] if peer else None


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _account_key() -> str:
    """The account a sign-in attempt names (form or JSON ``username``, lower case)."""
    name = request.form.get("username") if request.form else None
    if name is None:
        data = request.get_json(silent=True)
        name = data.get("username") if isinstance(data, dict) else None
    return "account:" + str(name or "").strip().lower()[:40]


#: One ``LOGIN_RATE_LIMIT`` per client address shared by every way in: password and code
#: sign-in (pages and API), sign-up, car activation. Guesses spread over routes all count.
sign_in_limit = limiter.shared_limit(_login_limit, scope="sign-in", key_func=get_remote_address,
                                     methods=["POST"])
#: ``LOGIN_RATE_LIMIT`` per account name, from any address (password guessing spread over
#: many addresses against one account).
account_limit = limiter.shared_limit(_login_limit, scope="sign-in-account", key_func=_account_key,
                                     methods=["POST"])
