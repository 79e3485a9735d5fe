"""The Flask application factory: settings, extensions, blueprints, socket handlers,
error pages, the background tasks and the start-up checks.

This module sits above every feature package (docs/architecture.md): it imports them
all to register their blueprints and Socket.IO handlers; none imports it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from flask import Flask, flash, jsonify, redirect, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from drem.admin import api as admin_api
from drem.admin import views as admin_views
from drem.auth import api as auth_api
from drem.auth import views as auth_views
from drem.auth.service import user_for_session, user_for_token
from drem.enrolment import api as enrolment_api
from drem.enrolment import views as enrolment_views
from drem.events import api as events_api
from drem.events import views as events_views
from drem.fleet import api as fleet_api
from drem.fleet import commands as fleet_commands
from drem.fleet import sockets as fleet_sockets
from drem.fleet import subscribers as fleet_subscribers
from drem.fleet import views as fleet_views
from drem.leaderboard import api as leaderboard_api
from drem.leaderboard import sockets as leaderboard_sockets
from drem.leaderboard import subscribers as leaderboard_subscribers
from drem.leaderboard import views as leaderboard_views
from drem.main import views as main_views
from drem.models_mgr import api as models_api
from drem.models_mgr import scan_jobs, scanner
from drem.models_mgr import sockets as models_sockets
from drem.models_mgr import views as models_views
from drem.platform import fanout
from drem.platform.background import Task, ensure_background_jobs
from drem.platform.config import ConfigError, load_config
from drem.platform.countries import country_choices, country_label
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import csrf, db, limiter, login_manager, migrate, socketio
from drem.platform.inputs import IdConverter
from drem.platform.permissions import allowed, check_routes, check_socket_handlers
from drem.platform.tokens import bearer_token
from drem.platform.web import account_limit, sign_in_limit
from drem.race_queue import api as race_queue_api
from drem.race_queue import sockets as race_queue_sockets
from drem.race_queue import subscribers as race_queue_subscribers
from drem.race_queue import views as race_queue_views
from drem.timekeeper import api as timekeeper_api
from drem.timekeeper import sockets as timekeeper_sockets
from drem.timekeeper import subscribers as timekeeper_subscribers
from drem.timekeeper import views as timekeeper_views

#: Modules whose import registers Socket.IO handlers on ``socketio`` (decorators).
SOCKET_MODULES = (fleet_sockets, leaderboard_sockets, models_sockets, race_queue_sockets, timekeeper_sockets)
#: Modules whose import connects signal receivers (drem.platform.signals).
SUBSCRIBER_MODULES = (timekeeper_subscribers, leaderboard_subscribers, fleet_subscribers, race_queue_subscribers)

__all__ = ["create_app", "ConfigError", "BODY_LIMITS", "SMALL_BODY_BYTES", "SECURITY_HEADERS"]

#: Largest request body of a route not in :data:`BODY_LIMITS` (bytes): forms and JSON
#: are small, so a huge body is refused (413) before anything reads it.
SMALL_BODY_BYTES = 256 * 1024
#: Endpoints that take larger bodies: ``None`` means the global ``MAX_CONTENT_LENGTH``
#: (the upload limit plus 1 MiB of multipart framing).
BODY_LIMITS: dict[str, int | None] = {
    "models_api.upload": None,
    "leaderboard_api.import_json": 16 * 1024 * 1024,
    "leaderboard_api.import_preview": 16 * 1024 * 1024,
    "leaderboard.import_upload": 16 * 1024 * 1024,
}
#: Endpoints that sign someone in (or a car): one shared limit per client address
#: (``drem.platform.web.sign_in_limit``); those naming an account also one per account.
SIGN_IN_ENDPOINTS = {"auth.login": True, "auth.login_code": False, "auth.signup": False,
                     "auth_api.create_token": True, "auth_api.redeem_code": False,
                     "fleet_car_api.activate": False}
#: Headers on every response: no framing by other sites, no content sniffing.
SECURITY_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(overrides: dict | None = None, env: dict | None = None) -> Flask:
    """Build the Flask app.

    ``env`` replaces ``os.environ`` for settings (tests); ``overrides`` are applied
    last. Raises :class:`ConfigError` for invalid settings (e.g. no SECRET_KEY in
    production).
    """
    instance = (env or os.environ).get("DREM_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance, instance_relative_config=False)
    app.url_map.converters["int"] = IdConverter  # path ids beyond MAX_ID: 404, never a driver error
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path, env))
    app.config.update(overrides or {})
    app.config.setdefault("MAX_CONTENT_LENGTH", app.config["UPLOAD_LIMIT_BYTES"] + 1024 * 1024)
    if app.config.get("PROXY_HOPS"):
        # Behind a reverse proxy: the client's address (login rate limit, car IPs) and the
        # scheme come from its X-Forwarded-* headers. X-Forwarded-Host is never trusted (a
        # client could set it and so the host of QR codes and model links): set PUBLIC_URL.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "migrations")),
                     render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    csrf.init_app(app)
    limiter.init_app(app)
    fanout.install()  # one websocket frame per room message, not one per display
    socketio.init_app(
        app, message_queue=app.config["REDIS_URL"] or None,
        channel=app.config.get("SOCKETIO_CHANNEL") or "flask-socketio",
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE"),
        cors_allowed_origins=lambda origin, environ: socket_origin_allowed(origin, environ, app.config),
        ping_interval=10, ping_timeout=10,
    )

    app.before_request(_limit_body)
    app.after_request(_security_headers)
    _register_blueprints(app)
    _register_auth(app)
    _register_errors(app)
    app.extensions["drem_job_tasks"] = background_tasks()
    check_routes(app)
    check_socket_handlers(socketio)
    return app


def _register_blueprints(app: Flask) -> None:
    blueprints = (main_views.bp, auth_views.bp, auth_api.bp, admin_views.bp, admin_api.bp, events_views.bp,
                  events_api.bp, events_api.laps_bp, enrolment_views.bp, enrolment_api.bp, models_views.bp, models_api.bp, fleet_views.bp,
                  fleet_api.bp, fleet_api.car_bp, timekeeper_views.bp, timekeeper_api.bp,
                  leaderboard_views.bp, leaderboard_api.bp, race_queue_views.bp, race_queue_api.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.before_request(lambda: ensure_background_jobs(app))
    for endpoint, names_account in SIGN_IN_ENDPOINTS.items():
        view = sign_in_limit(app.view_functions[endpoint])
        app.view_functions[endpoint] = account_limit(view) if names_account else view


def socket_origin_allowed(origin: str | None, environ: dict, config) -> bool:
    """Whether a Socket.IO handshake from a page at ``origin`` is accepted.

    Same origin only: ``scheme://host`` of the request itself (the scheme from
    ``X-Forwarded-Proto`` when ``PROXY_HOPS`` trusts a proxy), or the origin of
    ``PUBLIC_URL``. A page on another port or host of the venue network is refused, so it
    cannot use an operator's cookie. No ``Origin`` header (the car client, scripts) passes:
    those carry no browser cookie.
    """
    if not origin:
        return True
    host = environ.get("HTTP_HOST", "")
    schemes = {environ.get("wsgi.url_scheme", "http")}
    if config.get("PROXY_HOPS") and environ.get("HTTP_X_FORWARDED_PROTO"):
        schemes.add(environ["HTTP_X_FORWARDED_PROTO"].split(",")[-1].strip())
    allowed_origins = {f"{scheme}://{host}" for scheme in schemes}
    public = config.get("PUBLIC_URL") or ""
    if public:
        parts = urlsplit(public)
        allowed_origins.add(f"{parts.scheme}://{parts.netloc}")
    return origin.rstrip("/") in allowed_origins


def _limit_body() -> None:
    """Cap the request body by endpoint (:data:`BODY_LIMITS`, else :data:`SMALL_BODY_BYTES`).

    Werkzeug answers 413 when ``Content-Length`` is over the cap, and stops a chunked body
    at the cap while it is read, before any JSON or form parsing holds it.
    """
    limit = BODY_LIMITS.get(request.endpoint or "", SMALL_BODY_BYTES)
    if limit is not None:
        request.max_content_length = limit
        request.max_form_memory_size = min(limit, request.max_form_memory_size or limit)


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def background_tasks() -> list[Task]:
    """The background tasks of a drem process (in-process runner or ``drem worker``):
    model scans and inspection, expiring queued car commands, hourly model retention."""
    def expire_commands() -> None:
        if fleet_commands.expire_queued():
            commit()

    return [Task("model scans", scan_jobs.run_once), Task("car command expiry", expire_commands),
            Task("model retention", scan_jobs.run_retention, every_s=3600)]


@sa_event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: WAL mode, foreign keys on, wait for locks instead of failing."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def _register_auth(app: Flask) -> None:
    @login_manager.user_loader
    def load_user(session_id: str):
        return user_for_session(session_id)

    @login_manager.request_loader
    def load_from_token(req):
        token = bearer_token(req)
        return user_for_token(token) if token else None

    @app.before_request
    def protect_csrf():
        # Bearer-token API calls carry no cookie, so CSRF cannot reach them; everything
        # else that changes state must carry a CSRF token (form field or X-CSRFToken).
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        if bearer_token(request) is not None and "_user_id" not in session:
            return None  # a cookie session with any Authorization header still needs CSRF
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if getattr(view, "csrf_exempt", False):
            return None
        if not current_user.is_authenticated and getattr(view, "required_permission", None) is not None:
            return None  # no session authority to abuse: the permission check answers 401
        csrf.protect()
        return None

    @app.context_processor
    def inject_permissions():
        return {"can": lambda perm: allowed(current_user, perm),
                "country_label": country_label, "country_choices": country_choices,
                "scanner_warning": lambda: _scanner_warning(app)}


def _scanner_warning(app: Flask) -> str | None:
    """The scanner signature warning for staff pages (None when the databases are fine or
    the viewer is not staff); read at most once a minute per process."""
    if not allowed(current_user, "events.view"):
        return None
    return scanner.cached_signature_status(app.config["CLAMD_URL"]).warning


def _register_errors(app: Flask) -> None:
    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.is_json

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        db.session.rollback()
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        if exc.status == 404:
            return render_template("error.html", code=404, message=exc.message), 404
        flash(exc.message, "error")
        return redirect(request.referrer or "/")

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        if wants_json():
            return jsonify(error=f"CSRF check failed: {exc.description}"), 400
        return render_template("error.html", code=400, message="The form expired or was forged "
                               "(CSRF check failed). Reload the page and try again."), 400

    for code, text in ((403, "Forbidden. You may not do this."), (404, "Not found."), (405, "Method not allowed."),
                       (413, "The upload is too large."), (429, "Too many attempts; wait a minute.")):
        def handler(exc, code=code, text=text):
            if wants_json():
                return jsonify(error=getattr(exc, "description", None) if code == 429
                               else text.split(".")[0].lower()), code
            return render_template("error.html", code=code, message=text), code

        app.register_error_handler(code, handler)
