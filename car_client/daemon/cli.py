"""``car-client activate`` and ``car-client run``."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import click

from car_client.daemon.config import ENV_VAR, ConfigError, load_config, resolve_config_path
from car_client.daemon.startup import configure_logging, load_config_or_exit

#: the real car refused the console password, or its certificate changed (re-pin)
EXIT_VEHICLE_REFUSED = 4

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
                  randomize: bool, standin_lap_s: float | None, data_dir: Path,
                  console_url: str | None = None, password_file: str | None = None,
                  donkey_config: str | None = None):
    if kind == "standin":
        from car_client.vehicle.standin import StandInVehicle

        return StandInVehicle(lap_interval_s=standin_lap_s, seed=seed)
    if kind == "deepracer":
        return _deepracer(console_url, password_file, data_dir)
    if kind == "donkey":
        from car_client.vehicle.donkey import (
            DonkeyConfigError,
            load_donkey_config,
            make_donkey_vehicle,
        )

        try:
            return make_donkey_vehicle(load_donkey_config(donkey_config))
        except (DonkeyConfigError, ImportError, OSError, ValueError) as exc:
            raise click.ClickException(f"cannot start the Donkey Car backend: {exc}") from None
    try:
        from car_client.sim.vehicle import SimulatedVehicle
    except ImportError as exc:
        raise click.ClickException(f"the simulated vehicle is not available: {exc}") from None
    return SimulatedVehicle(track=track, speedup=speedup, seed=seed, randomize=randomize)


def read_password_file(path: str | None) -> str:
    """The console password: the first line of ``path`` (ClickException when missing/empty)."""
    if not path:
        raise click.ClickException("--vehicle deepracer needs --console-password-file "
                                   "(a file holding the car's console password)")
    try:
        password = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise click.ClickException(f"cannot read the console password from {path}: {exc}") from None
    if not password:
        raise click.ClickException(f"the console password file {path} is empty")
    return password


def _deepracer(console_url: str | None, password_file: str | None, data_dir: Path):
    from car_client.vehicle.deepracer import DeepRacerVehicle
    from car_client.vehicle.deepracer_console import (
        ConsoleClient,
        ConsoleUnreachable,
        LoginRefused,
        PinMismatch,
    )

    if not console_url:
        raise click.ClickException("--vehicle deepracer needs --console-url https://<car address>")
    try:
        client = ConsoleClient(console_url, read_password_file(password_file),
                               data_dir / "deepracer-pins.json")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        client.login()
    except (LoginRefused, PinMismatch) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_VEHICLE_REFUSED)
    except ConsoleUnreachable as exc:  # the car may still be booting: the backend keeps trying
        logging.getLogger(__name__).warning("%s; carrying on, commands wait for the car", exc)
    return DeepRacerVehicle(client)


@click.command()
@_config_option
@click.option("--vehicle", "vehicle_kind", type=click.Choice(["standin", "sim", "deepracer", "donkey"]),
              default="standin", show_default=True,
              help="What to drive (deepracer: a bridge to the car's console; donkey: on the car's Pi).")
@click.option("--console-url", envvar="DREM_DEEPRACER_URL", default=None,
              help="--vehicle deepracer: the car's console, https://<car address>.")
@click.option("--console-password-file", "password_file", envvar="DREM_DEEPRACER_PASSWORD_FILE",
              type=click.Path(dir_okay=False), default=None,
              help="--vehicle deepracer: file holding the console password (never on the command line).")
@click.option("--donkey-config", envvar="DREM_DONKEY_CONFIG", type=click.Path(dir_okay=False), default=None,
              help="--vehicle donkey: the car's calibration (JSON, see docs/cars.md).")
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
def run(config_path, vehicle_kind, console_url, password_file, donkey_config, track, speedup, seed,
        randomize, standin_lap_s, data_dir, ack_timeout, log_level) -> None:
    """Run the car daemon until SIGTERM/SIGINT (exit 3: token refused, re-activate;
    exit 4: the DeepRacer console refused the password or its certificate changed)."""
    path = resolve_config_path(config_path)
    config = load_config_or_exit(load_config, path)
    configure_logging(log_level)
    folder = Path(data_dir) if data_dir else path.parent
    vehicle = _make_vehicle(vehicle_kind, track, speedup, seed, randomize, standin_lap_s, folder,
                            console_url, password_file, donkey_config)
    from car_client.daemon.daemon import Daemon

    daemon = Daemon(config, vehicle, folder, ack_timeout_s=ack_timeout)
    sys.exit(daemon.run())
