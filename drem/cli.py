"""The ``drem`` command: init, run, create-user, worker, demo, doctor, plus Flask's own
(``drem db upgrade``)."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from drem.app import create_app
from drem.auth.models import User
from drem.auth.service import create_user
from drem.demo.runner import DemoEvent, DemoSetupError, demo_options, run_demo, summary_failed
from drem.demo.seed import seed_demo
from drem.models_mgr.scanner import SIGNATURES_MAX_AGE, signature_status
from drem.platform.background import JobRunner
from drem.platform.errors import ServiceError
from drem.platform.extensions import db, upgrade_database
from drem.platform.serving import raise_open_files


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """drem: self-hosted event manager for autonomous model-car races."""


main.add_command(shell_command)
main.add_command(routes_command)


@main.command("init")
@click.option("--admin-username", default="admin", show_default=True)
@click.option("--admin-password", envvar="DREM_ADMIN_PASSWORD", default=None,
              help="default: a random password, printed once")
@with_appcontext
def init_command(admin_username: str, admin_password: str | None) -> None:
    """Create or upgrade the database and create the first admin (if there is none)."""
    upgrade_database()
    if db.session.scalar(db.select(User).where(User.role == "admin").limit(1)) is not None:
        click.echo("database is up to date; an admin exists already")
        return
    password = admin_password or secrets.token_urlsafe(9)
    create_user(admin_username, password, role="admin")
    db.session.commit()
    click.echo(f"created admin {admin_username!r}" + ("" if admin_password else f" with password {password}"))


@main.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check what an event needs: the database, the virus scanner and its signatures, the
    secrets. Exits 1 when something is wrong (each problem on its own line)."""
    problems: list[str] = []
    try:
        db.session.execute(db.text("SELECT 1"))
        click.echo("database: ok")
    except Exception as exc:  # noqa: BLE001 - any driver error is a problem to report
        problems.append(f"database: {exc}")
    status = signature_status(current_app.config["CLAMD_URL"])
    click.echo(f"virus scanner: {current_app.config['CLAMD_URL']}: {status.version or 'not answering'}")
    for database in status.databases:
        age = (time.time() - database.built_at.timestamp()) / 86400
        click.echo(f"  {database.name}: {database.signatures} signatures, built "
                   f"{database.built_at:%Y-%m-%d %H:%M} UTC ({age:.0f} days ago)")
    if status.warning:
        problems.append(f"virus scanner: {status.warning}")
    else:
        click.echo(f"  signatures: ok (younger than {SIGNATURES_MAX_AGE.days} days)")
    if current_app.config["DREM_ENV"] == "production" and not current_app.config["SESSION_COOKIE_SECURE"]:
        click.echo("note: SESSION_COOKIE_SECURE is off; turn it on behind HTTPS (docs/deployment.md)")
    for problem in problems:
        click.echo(f"PROBLEM {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("all checks passed")


@main.command("create-user")
@click.argument("username")
@click.option("--role", default="racer", show_default=True,
              type=click.Choice(["admin", "operator", "registration", "commentator", "racer"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email", default=None)
@click.option("--country", "country_code", default=None, help="ISO 3166-1 alpha-2, e.g. DE")
@with_appcontext
def create_user_command(username, role, password, email, country_code) -> None:
    """Create a user with a role."""
    try:
        create_user(username, password, role=role, email=email, country_code=country_code)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"created {role} {username!r}")


def gunicorn_command(host: str, port: int) -> list[str]:
    """The gunicorn command line ``drem run`` executes: the settings of
    :mod:`drem.platform.serving` (one gevent worker, ``worker_connections``, the heap
    frozen after start-up) bound to HOST:PORT."""
    return [sys.executable, "-m", "gunicorn", "-c", "python:drem.platform.serving", "--bind", f"{host}:{port}",
            "wsgi:app"]


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_command(host: str, port: int) -> None:
    """Serve drem with gunicorn and one gevent worker (websockets included) on HOST:PORT,
    taking up to 4,000 connections (displays, consoles, cars, timers).

    Raises the open-files limit for that many sockets (up to the hard limit; says so when
    the hard limit is lower). To use more cores, run several of these on different ports
    with REDIS_URL set, behind a proxy with sticky sessions (docs/deployment.md); one
    gunicorn with several workers on one port cannot keep a Socket.IO client on one worker.
    """
    _soft, problem = raise_open_files()
    if problem:
        click.echo(f"warning: {problem}", err=True)
    args = gunicorn_command(host, port)
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.execv(sys.executable, args)


@main.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add the demo staff, event and racers (idempotent) and print how to sign in."""
    info = seed_demo()
    db.session.commit()
    click.echo(f"demo event id {info['event_id']} with racers {', '.join(info['racers'])} (password drem-racer)")
    for role, username, password in info["staff"]:
        click.echo(f"  {role:<12} {username} / {password}")


@main.command("worker")
@click.option("--poll", default=2.0, show_default=True, help="seconds between looks for due work")
@with_appcontext
def worker_command(poll: float) -> None:
    """Run background jobs (model scans, retention) in this process until stopped.

    For scale-out: start one or more with BACKGROUND_JOBS=external on the web workers,
    and REDIS_URL set so status pushes reach the browsers.
    """
    app = current_app._get_current_object()
    runner = JobRunner(app, app.extensions["drem_job_tasks"], poll_s=poll)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    click.echo("drem worker running; Ctrl-C to stop")
    try:
        runner.loop()
    except KeyboardInterrupt:
        pass


@main.command("demo")
@click.option("--headless", is_flag=True, help="run the event, print the summary and exit")
@click.option("--racers", default=4, show_default=True, type=click.IntRange(1, 50))
@click.option("--cars", default=2, show_default=True, type=click.IntRange(1, 20))
@click.option("--speedup", default=1.0, show_default=True, type=click.FloatRange(0.1, 100),
              help="simulated seconds per wall second on the cars")
@click.option("--laps", default=3, show_default=True, type=click.IntRange(1, 50), help="laps per race")
@click.option("--runs", default=1, show_default=True, type=click.IntRange(1, 5), help="races per racer")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=int, help="default: 5000, or a free port when --headless")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="web processes: more than one runs N one-worker gunicorn processes behind HAProxy "
                   "with sticky sessions (needs REDIS_URL)")
@click.option("--scaleout", is_flag=True,
              help="the scale-out stack: PostgreSQL (DATABASE_URL), Redis (REDIS_URL), SeaweedFS S3, clamd over "
                   "TCP, 2+ web processes behind HAProxy, drem worker processes")
@click.option("--job-workers", default=1, show_default=True, type=click.IntRange(1, 8),
              help="drem worker processes with --scaleout")
@click.option("--instance", "instance", default=None, type=click.Path(path_type=Path),
              help="demo folder (default: instance/demo, or a new temporary one with --headless)")
@click.option("--models-dir", default=None, type=click.Path(path_type=Path),
              help="trained demo models (default: $DREM_DEMO_MODELS, else the user's cache folder, "
                   "see drem.platform.config.demo_models_dir)")
@click.option("--real-cars", is_flag=True,
              help="also a DeepRacer (device-console stand-in) and a Donkey Car (simulated hardware), see docs/cars.md")
@click.option("--reset-database", is_flag=True,
              help="PostgreSQL only: create the DATABASE_URL database if missing, else drop every table in it")
def demo_command(headless, racers, cars, speedup, laps, runs, host, port, workers, scaleout, job_workers,
                 instance, models_dir, real_cars, reset_database) -> None:
    """Run a whole demo event with real processes: clamd, the server, car clients with
    simulated cars; racers upload models over HTTP, the operator runs the races.

    Uses DATABASE_URL, REDIS_URL and STORAGE_URL from the environment when set. Writes
    demo_summary.json into the demo folder; exits 1 when a lap was lost or doubled or
    the leaderboard disagrees with the cars' lap logs. Ctrl-C (or SIGTERM) stops every
    process the demo started, clamd included when the demo started it.
    """
    def log(msg: str) -> None:
        click.echo(f"[{time.strftime('%H:%M:%S')}] {msg}")

    try:
        opts = demo_options(headless=headless, instance=instance, models_dir=models_dir, port=port,
                            reset_database=reset_database, log=log, racers=racers, cars=cars, speedup=speedup,
                            laps=laps, runs=runs, host=host, workers=workers, scaleout=scaleout,
                            job_workers=job_workers, real_cars=real_cars)
    except DemoSetupError as exc:
        raise click.ClickException(str(exc)) from exc
    if summary_failed(run_demo(DemoEvent(opts), headless, click.echo)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
