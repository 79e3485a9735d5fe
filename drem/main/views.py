"""Home page, health check, the virus scanner's status page, and the front-end libraries
installed from npm."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, render_template, send_from_directory
from flask_login import current_user

from drem.main import service
from drem.models_mgr.scanner import SIGNATURES_MAX_AGE, clear_signature_cache, signature_status
from drem.platform.config import REPO_ROOT
from drem.platform.extensions import db
from drem.platform.permissions import public, require

bp = Blueprint("main", __name__, template_folder="templates")

# Front-end files served from node_modules (installed from the npm registry at setup).
VENDOR_FILES = {
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}


@bp.get("/")
@public
def home():
    joined = service.joined_event_ids(current_user.id) if current_user.is_authenticated else set()
    return render_template("main/home.html", events=service.recent_events(20), joined=joined)


@bp.get("/healthz")
@public
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")


@bp.get("/admin/scanner")
@require("users.manage")
def scanner():
    """The virus scanner's signature databases: names, signature counts, age, warning."""
    clear_signature_cache()  # the page always asks clamd afresh (and refreshes the banner)
    status = signature_status(current_app.config["CLAMD_URL"])
    return render_template("main/scanner.html", status=status, clamd_url=current_app.config["CLAMD_URL"],
                           max_age_days=SIGNATURES_MAX_AGE.days, hide_scanner_banner=True)


@bp.get("/vendor/<path:name>")
@public
def vendor(name: str):
    """Serve an allow-listed front-end file from node_modules (404 for anything else)."""
    rel = VENDOR_FILES.get(name)
    if rel is None and name.startswith("flags/") and name.endswith(".svg") and len(name) == len("flags/xx.svg"):
        rel = f"flag-icons/flags/4x3/{name[6:].lower()}"
    if rel is None:
        abort(404)
    root = Path(current_app.config.get("NODE_MODULES", REPO_ROOT / "node_modules"))
    return send_from_directory(root, rel, max_age=3600)
