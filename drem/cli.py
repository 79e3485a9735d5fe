"""The ``drem`` command: init, run, create-user, worker, demo, plus Flask's own (``drem db upgrade``)."""

from __future__ import annotations

import os
import secrets
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext


def _create_app():
    from drem import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """drem: self-hosted event manager for autonomous model-car races."""


main.add_command(shell_command)
main.add_command(routes_command)


def upgrade_database() -> None:
    """Apply every Alembic migration (creates the database on first run)."""
    from flask_migrate import upgrade

    upgrade(directory=current_app.extensions["migrate"].directory)


@main.command("init")
@click.option("--admin-username", default="admin", show_default=True)
@click.option("--admin-password", envvar="DREM_ADMIN_PASSWORD", default=None,
              help="default: a random password, printed once")
@with_appcontext
def init_command(admin_username: str, admin_password: str | None) -> None:
    """Create or upgrade the database and create the first admin (if there is none)."""
    from drem.auth.models import User
    from drem.auth.service import create_user
    from drem.extensions import db

    upgrade_database()
    if db.session.scalar(db.select(User).where(User.role == "admin").limit(1)) is not None:
        click.echo("database is up to date; an admin exists already")
        return
    password = admin_password or secrets.token_urlsafe(9)
    create_user(admin_username, password, role="admin")
    db.session.commit()
    click.echo(f"created admin {admin_username!r}" + ("" if admin_password else f" with password {password}"))


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
    from drem.auth.service import create_user
    from drem.errors import ServiceError
    from drem.extensions import db

    try:
        create_user(username, password, role=role, email=email, country_code=country_code)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"created {role} {username!r}")


@main.command("run")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="gevent workers; more than one needs REDIS_URL (and sticky sessions in a proxy)")
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve drem with gunicorn and gevent (websockets included) on HOST:PORT."""
    if workers > 1 and not os.environ.get("REDIS_URL"):
        raise click.ClickException("more than one worker needs REDIS_URL for Socket.IO messages")
    args = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(workers), "--bind", f"{host}:{port}",
            "--no-control-socket", "--graceful-timeout", "5", "--timeout", "120", "wsgi:app"]
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.execv(sys.executable, args)


@main.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add the demo staff, event and racers (idempotent) and print how to sign in."""
    from drem.extensions import db
    from drem.seed import seed_demo

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
    import signal

    from drem.jobs import JobRunner

    runner = JobRunner(current_app._get_current_object(), poll_s=poll)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    click.echo("drem worker running; Ctrl-C to stop")
    try:
        runner.loop()
    except KeyboardInterrupt:
        pass
