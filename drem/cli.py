"""The ``drem`` command: init, run, create-user, worker, demo, plus Flask's own (``drem db upgrade``)."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext


def _create_app():
    from drem.app import create_app

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
    from drem.platform.extensions import db

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
    from drem.platform.errors import ServiceError
    from drem.platform.extensions import db

    try:
        create_user(username, password, role=role, email=email, country_code=country_code)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"created {role} {username!r}")


@main.command("run")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_command(host: str, port: int) -> None:
    """Serve drem with gunicorn and one gevent worker (websockets included) on HOST:PORT.

    To use more cores, run several of these on different ports with REDIS_URL set,
    behind a proxy with sticky sessions (docs/deployment.md); one gunicorn with several
    workers on one port cannot keep a Socket.IO client on one worker.
    """
    args = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1", "--bind", f"{host}:{port}",
            "--no-control-socket", "--graceful-timeout", "5", "--timeout", "120", "wsgi:app"]
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.execv(sys.executable, args)


@main.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add the demo staff, event and racers (idempotent) and print how to sign in."""
    from drem.demo.seed import seed_demo
    from drem.platform.extensions import db

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

    from drem.platform.background import JobRunner

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
@click.option("--drill", is_flag=True, help="run the fault drill during the event (drem/demo/drill.py)")
@click.option("--outage", default=30.0, show_default=True, type=click.FloatRange(1, 600),
              help="--drill: seconds a car's network is cut")
@click.option("--instance", "instance", default=None, type=click.Path(path_type=Path),
              help="demo folder (default: instance/demo, or a new temporary one with --headless)")
@click.option("--models-dir", default=None, type=click.Path(path_type=Path), help="default: $DREM_DEMO_MODELS or var/demo-models")
@click.option("--reset-database", is_flag=True,
              help="PostgreSQL only: create the DATABASE_URL database if missing, else drop every table in it")
def demo_command(headless, racers, cars, speedup, laps, runs, host, port, workers, scaleout, job_workers, drill,
                 outage, instance, models_dir, reset_database) -> None:
    """Run a whole demo event with real processes: clamd, the server, car clients with
    simulated cars; racers upload models over HTTP, the operator runs the races.

    Uses DATABASE_URL, REDIS_URL and STORAGE_URL from the environment when set. Writes
    demo_summary.json (and drill.json with --drill) into the demo folder; exits 1 when
    a lap was lost or doubled or the leaderboard disagrees with the cars' lap logs.
    """
    import json as _json
    import tempfile

    from drem.demo.report import format_summary
    from drem.demo.runner import ADMIN_PASSWORD, OPERATOR, DemoEvent, DemoOptions
    from drem.platform.config import REPO_ROOT

    if (workers > 1 or scaleout) and not os.environ.get("REDIS_URL"):
        raise click.ClickException("more than one web process needs REDIS_URL")
    if scaleout and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        raise click.ClickException("--scaleout runs on PostgreSQL: set DATABASE_URL=postgresql://…")
    from drem.platform.config import demo_models_dir

    models_dir = models_dir or demo_models_dir()
    if not (models_dir / "demo_models.json").exists():
        click.echo(f"building the demo models into {models_dir} (a few minutes, once)")
        import subprocess

        subprocess.run([sys.executable, "-m", "car_client.training.demo_models", "--out", str(models_dir)], check=True)
    if instance is None:
        instance = Path(tempfile.mkdtemp(prefix="drem-demo-")) if headless else REPO_ROOT / "instance" / "demo"
    if reset_database:
        _reset_postgres(os.environ.get("DATABASE_URL", ""))
    opts = DemoOptions(racers=racers, cars=cars, speedup=speedup, laps=laps, runs=runs, instance=instance,
                       models_dir=models_dir, host=host, port=port or (None if headless else 5000), workers=workers,
                       database_url=os.environ.get("DATABASE_URL", ""), redis_url=os.environ.get("REDIS_URL", ""),
                       storage_url=os.environ.get("STORAGE_URL", ""), scaleout=scaleout, job_workers=job_workers,
                       keep_clamd=not headless,
                       log=lambda msg: click.echo(f"[{time.strftime('%H:%M:%S')}] {msg}"))
    if drill:
        from drem.demo.drill import DrillEvent, format_drill

        demo = DrillEvent(opts, outage_s=outage)
    else:
        demo = DemoEvent(opts)
    summary = None

    def _terminate(*_):  # SIGTERM (a test's timeout, systemd) stops the cars and servers too
        raise KeyboardInterrupt

    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        demo.start_services()
        demo.setup_event()
        click.echo(f"\nLeaderboard: {demo.url}/events/{demo.event['id']}/leaderboard   "
                   f"(operator {OPERATOR[0]} / {OPERATOR[1]}, admin admin / {ADMIN_PASSWORD})\n", nl=True)
        sys.stdout.flush()
        demo.start_cars()
        demo.run_races()
        demo.wait_outboxes_empty()
        summary = demo.summary()
        click.echo("\n" + format_summary(summary))
        (instance / "demo_summary.json").write_text(_json.dumps(summary, indent=2))
        if drill:
            click.echo("\n" + format_drill(summary["drill"]))
            (instance / "drill.json").write_text(_json.dumps(summary["drill"], indent=2))
        click.echo(f"\nsummary: {instance / 'demo_summary.json'}")
        if not headless:
            click.echo(f"\nServing {demo.url} until Ctrl-C. Log in as {OPERATOR[0]} / {OPERATOR[1]} and open "
                       f"the timekeeper to run another race by hand; the cars are still connected.")
            while demo.server_alive():
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    if summary_failed(summary):
        raise SystemExit(1)


def summary_failed(summary: dict | None) -> bool:
    """True when the demo lost or doubled a lap or the leaderboard disagrees with the cars."""
    return summary is None or bool(summary["lost_laps"] or summary["doubled_laps"]
                                   or not summary["leaderboard_matches_car_logs"] or summary.get("drill_failed"))


def _reset_postgres(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql")):
        raise click.ClickException("--reset-database needs a PostgreSQL DATABASE_URL")
    from urllib.parse import urlsplit, urlunsplit

    import sqlalchemy as sa

    url = url.replace("postgres://", "postgresql+psycopg://", 1).replace("postgresql://", "postgresql+psycopg://", 1)
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = sa.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    if exists:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
