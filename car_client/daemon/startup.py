"""What ``car-client run`` and ``car-client timer run`` do before their program starts:
read the activation config (or exit with a clear message) and set up logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from car_client.daemon.config import ConfigError

#: Exit status of a device program that was never activated (no or unreadable config).
EXIT_NOT_ACTIVATED = 2

T = TypeVar("T")


def load_config_or_exit(load: Callable[[Path], T], path: Path) -> T:
    """``load(path)``; on ConfigError print ``Error: <reason>`` to stderr and exit with
    :data:`EXIT_NOT_ACTIVATED`."""
    try:
        return load(path)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_NOT_ACTIVATED)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (DEBUG, INFO, WARNING, ERROR; any case) with time, level
    and logger name (systemd's journal keeps stderr)."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
