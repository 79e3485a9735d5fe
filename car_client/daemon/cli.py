"""``car-client activate`` and ``car-client run``."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import click

from car_client.daemon.config import ENV_VAR, ConfigError, load_config, resolve_config_path

EXIT_NOT_ACTIVATED = 2

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), envvar=ENV_VAR,
    help=f"Car config file (default ~/.config/drem-car/config.json, or ${ENV_VAR}).")


@click.command()
@click.option("--server", required=True, help="drem server URL, e.g. http://drem.local:5000")
@click.option("--code", required=True, help="One-time activation code from the cars page.")
@_config_option
@click.option("--hostname", default=None, help="Car name (default: this machine's hostname).")
def activate(server: str, code: str, config_path: str | None, hostname: str | None) -> None:
    """Activate this car with a one-time code and store its token (mode 0600)."""
    from car_client.daemon.activation import ActivationError
    from car_client.daemon.activation import activate as do_activate
    from car_client.daemon.config import save_config

    path = resolve_config_path(config_path)
    try:
        config = do_activate(server, code, hostname or socket.gethostname())
    except (ActivationError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    replaced = path.exists()
    try:
        save_config(path, config)
    except OSError as exc:
        raise click.ClickException(f"activated, but cannot write {path}: {exc}") from None
    click.echo(f"activated as {config.hostname} (car {config.car_id}) on {config.server}")
    click.echo(f"{'replaced' if replaced else 'wrote'} {path} (mode 0600)")


def _make_vehicle(kind: str, track: str | None, speedup: float, seed: int | None,
                  randomize: bool, standin_lap_s: float | None):
    if kind == "standin":
        from car_client.vehicle.standin import StandInVehicle

        return StandInVehicle(lap_interval_s=standin_lap_s, seed=seed)
    try:
        from car_client.sim.vehicle import SimulatedVehicle
    except ImportError as exc:
        raise click.ClickException(f"the simulated vehicle is not available: {exc}") from None
    return SimulatedVehicle(track=track, speedup=speedup, seed=seed, randomize=randomize)


@click.command()
@_config_option
@click.option("--vehicle", "vehicle_kind", type=click.Choice(["standin", "sim"]),
              default="standin", show_default=True, help="What to drive.")
@click.option("--track", default="reinvent_base", show_default=True,
              help="Track for --vehicle sim (a name from the shared tracks folder).")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Simulation speed-up factor for --vehicle sim.")
@click.option("--seed", type=int, default=None, help="Random seed for the vehicle.")
@click.option("--randomize/--no-randomize", default=False, show_default=True,
              help="Randomise the simulated car's start pose and noise.")
@click.option("--standin-lap-interval", "standin_lap_s", type=float, default=None,
              help="Seconds per synthetic lap for --vehicle standin (default: no laps).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Outbox, lap log and models (default: the config file's folder).")
@click.option("--ack-timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the server's ack of a lap or result.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def run(config_path, vehicle_kind, track, speedup, seed, randomize, standin_lap_s, data_dir,
        ack_timeout, log_level) -> None:
    """Run the car daemon until SIGTERM/SIGINT (exit 3: token refused, re-activate)."""
    path = resolve_config_path(config_path)
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_NOT_ACTIVATED)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    vehicle = _make_vehicle(vehicle_kind, track, speedup, seed, randomize, standin_lap_s)
    from car_client.daemon.daemon import Daemon

    daemon = Daemon(config, vehicle, Path(data_dir) if data_dir else path.parent,
                    ack_timeout_s=ack_timeout)
    sys.exit(daemon.run())
