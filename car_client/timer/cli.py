"""``car-client timer activate`` and ``car-client timer run``."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

import click
from gpiozero.pins.mock import MockFactory

from car_client import __version__
from car_client.daemon.activation import ActivationError, exchange_code
from car_client.daemon.config import ConfigError, normalize_server_url
from car_client.daemon.startup import configure_logging, load_config_or_exit
from car_client.timer.config import (
    ENV_VAR,
    SensorConfig,
    TimerConfig,
    load_timer_config,
    parse_sensors,
    resolve_config_path,
    save_timer_config,
)
from car_client.timer.program import TimerProgram

ACTIVATE_PATH = "/api/timer/activate"

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), envvar=ENV_VAR,
    help=f"Timer config file (default ~/.config/drem-timer/config.json, or ${ENV_VAR}).")


@click.group()
def timer() -> None:
    """The lap timer at the finish line: sensors on GPIO report crossings to drem."""


@timer.command()
@click.option("--server", required=True, help="drem server URL, e.g. http://drem.local:5000")
@click.option("--code", required=True, help="One-time activation code from the track's timers page.")
@_config_option
@click.option("--hostname", default=None, help="Timer name on the network (default: this machine's hostname).")
@click.option("--pin", "pins", type=int, multiple=True,
              help="GPIO (BCM) pin of a sensor; give it once per sensor, at most twice (default 17 and 27).")
@click.option("--pull-up/--pull-down", default=True, show_default=True,
              help="Pull-up: the sensor pulls the pin to ground when the car crosses.")
@click.option("--edge", type=click.Choice(["rising", "falling"]), default=None,
              help="Edge that marks a crossing (default: falling with pull-up, rising with pull-down).")
@click.option("--bounce-ms", type=click.IntRange(0, 10_000), default=50, show_default=True,
              help="Edges of one sensor closer than this are contact chatter, dropped on the timer.")
def activate(server, code, config_path, hostname, pins, pull_up, edge, bounce_ms) -> None:
    """Activate this timer with a one-time code; store its token and wiring (mode 0600)."""
    path = resolve_config_path(config_path)
    hostname = hostname or socket.gethostname()
    edge = edge or ("falling" if pull_up else "rising")
    try:
        server = normalize_server_url(server)
        sensors = parse_sensors([{"pin": p, "pull_up": pull_up, "edge": edge, "bounce_ms": bounce_ms}
                                 for p in (pins or (17, 27))])
        data = exchange_code(server, ACTIVATE_PATH, {"code": code.strip(), "hostname": hostname,
                                                     "software_version": __version__}, "timer")
        config = TimerConfig(server=server, timer_id=data["timer_id"], token=str(data["token"]),
                             name=str(data.get("name") or ""), track_id=data.get("track_id"), hostname=hostname,
                             heartbeat_interval_s=float(data.get("heartbeat_interval_s") or 2.0),
                             activated_at=time.time(), sensors=sensors)
    except (ActivationError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"the server's activation answer lacks a timer id or token ({exc})") from None
    try:
        save_timer_config(path, config)
    except OSError as exc:
        raise click.ClickException(f"activated, but cannot write {path}: {exc}") from None
    wiring = ", ".join(f"GPIO{s.pin}" for s in sensors)
    click.echo(f"activated as timer {config.timer_id} ({config.name}) on {config.server}; sensors {wiring}")
    click.echo(f"wrote {path} (mode 0600)")


MOCK_FIFO = "mock-pins.fifo"
MOCK_PLAYED = "mock-pins.played"  # "<sensor> <scheduled ns or -> <played ns>" per pulse, for tests and benchmarks


def _mock_input(program, fifo: Path) -> None:
    """Drive gpiozero's mock pins from the named pipe ``fifo``: each line ``<sensor>`` is one
    crossing now (the pin goes to its crossing level and back), ``<sensor> <ns>`` one at
    ``time.monotonic_ns() == ns`` (a pulse schedule, as from a signal generator: lines are
    played in order, so a whole schedule may be written at once). Each pulse is logged with
    the time it was really played (``mock-pins.played``: a busy machine may wake the player
    late). For the demo, tests and benchmarks only; several writers may come and go."""
    while True:
        with open(fifo, encoding="ascii") as stream:  # blocks until a writer opens the pipe
            for line in stream:
                _pulse(program, line.strip())


SPIN_NS = 2_000_000
"""The mock input sleeps until this long before a scheduled pulse, then spins: a sleeping
thread wakes up to about 0.6 ms late on this kind of machine, a spinning one within a few
microseconds, as a real edge is stamped by the kernel when it happens."""


def _wait_until_ns(at_ns: int) -> None:
    """Block until ``time.monotonic_ns()`` reaches ``at_ns`` (ns): sleep, then spin the last
    :data:`SPIN_NS`, so the mock pin's edge lands on its schedule as a real sensor's would."""
    while (wait_ns := at_ns - time.monotonic_ns()) > SPIN_NS:
        time.sleep((wait_ns - SPIN_NS) / 1e9)
    while time.monotonic_ns() < at_ns:
        pass


def _pulse(program, line: str) -> None:
    words = line.split()
    if not words:
        return
    try:
        config: SensorConfig = next(s for s in program.sensors.configs if s.sensor == int(words[0]))
        at_ns = int(words[1]) if len(words) > 1 else None
    except (ValueError, StopIteration):
        logging.getLogger(__name__).warning("mock input: cannot read %r", line)
        return
    if at_ns is not None:
        _wait_until_ns(at_ns)
    pin = program.sensors.pin_of(config.sensor)
    played_ns = time.monotonic_ns()
    if config.edge == "rising":
        pin.drive_high()
        pin.drive_low()
    else:
        pin.drive_low()
        pin.drive_high()
    with open(program.data_dir / MOCK_PLAYED, "a", encoding="ascii") as played:  # when each pulse really came
        played.write(f"{config.sensor} {at_ns if at_ns is not None else '-'} {played_ns}\n")


@timer.command()
@_config_option
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Outbox and crossing log (default: the config file's folder).")
@click.option("--mock-pins", is_flag=True,
              help=f"Use gpiozero's mock pins, driven by lines '<sensor number>' written to the named pipe "
                   f"{MOCK_FIFO} in the data dir (demo, tests, benchmarks).")
@click.option("--ack-timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the server's ack of a crossing.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def run(config_path, data_dir, mock_pins, ack_timeout, log_level) -> None:
    """Run the timer until SIGTERM/SIGINT (exit 2: not activated; 3: token refused, activate again)."""
    path = resolve_config_path(config_path)
    config = load_config_or_exit(load_timer_config, path)
    configure_logging(log_level)
    factory = MockFactory() if mock_pins else None
    data = Path(data_dir) if data_dir else path.parent
    program = TimerProgram(config, data, pin_factory=factory, ack_timeout_s=ack_timeout)
    if mock_pins:
        fifo = data / MOCK_FIFO
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        threading.Thread(target=_mock_input, args=(program, fifo), name="timer-mock-input", daemon=True).start()
    sys.exit(program.run())
