"""``car-client calibrate``: find a Donkey Car's PWM values by hand, as ``donkey calibrate``.

Run on the car with the wheels off the ground: ``car-client calibrate --channel 1``
(steering) or ``--channel 0`` (throttle), type pulse values (12-bit, e.g. 370) and
watch the car; ``--save STEERING_LEFT_PWM`` (or any other ``*_PWM`` term) writes the
last value into the calibration file used by ``car-client run --vehicle donkey``.
Each value is also checked for range before it reaches the servo or ESC.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from car_client.vehicle.donkey import (
    DonkeyConfig,
    DonkeyConfigError,
    PwmOutputs,
    load_donkey_config,
    save_donkey_config,
)

PWM_TERMS = ("STEERING_LEFT_PWM", "STEERING_RIGHT_PWM", "THROTTLE_FORWARD_PWM", "THROTTLE_STOPPED_PWM",
             "THROTTLE_REVERSE_PWM")


def calibrate_channel(outputs: PwmOutputs, channel: int, ask: Callable[[], str],
                      say: Callable[[str], None]) -> int | None:
    """Send each pulse the user types to ``channel`` until ``q`` or an empty line.

    ``ask()`` returns the next line; ``say(text)`` shows a message. Returns the last
    pulse sent (None when none was). Values outside 0..4095 or not whole numbers are
    refused with a message and nothing is sent."""
    last = None
    while True:
        line = ask().strip().lower()
        if line in ("", "q", "quit"):
            return last
        try:
            pulse = int(line)
        except ValueError:
            say(f"not a whole number: {line!r} (type a pulse such as 370, or q)")
            continue
        if not 0 <= pulse <= 4095:
            say(f"{pulse} is outside 0..4095")
            continue
        outputs.set_pulse(channel, pulse)
        last = pulse
        say(f"channel {channel}: pulse {pulse}")


def save_term(path: str, term: str, pulse: int) -> DonkeyConfig:
    """Write ``term = pulse`` into the calibration file at ``path`` (checked first)."""
    if term not in PWM_TERMS:
        raise DonkeyConfigError(f"--save takes one of {', '.join(PWM_TERMS)}")
    config = load_donkey_config(path)
    setattr(config, term, pulse)
    save_donkey_config(path, config)
    return config


@click.command()
@click.option("--channel", type=click.IntRange(0, 15), required=True, help="PCA9685 channel (0..15).")
@click.option("--donkey-config", envvar="DREM_DONKEY_CONFIG", type=click.Path(dir_okay=False),
              required=True, help="The car's calibration file (created with Donkey's defaults).")
@click.option("--save", "term", type=click.Choice(PWM_TERMS), default=None,
              help="Store the last pulse as this term.")
def calibrate(channel: int, donkey_config: str, term: str | None) -> None:
    """Send hand-typed pulses to one PCA9685 channel (a Donkey Car's steering or ESC)."""
    import board  # Adafruit Blinka: only on the car
    import busio

    try:
        config = load_donkey_config(donkey_config)
        outputs = PwmOutputs(config, busio.I2C(board.SCL, board.SDA))
    except (DonkeyConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("type a pulse (e.g. 370) and Enter; q to finish")
    last = calibrate_channel(outputs, channel, lambda: input("pulse> "), click.echo)
    outputs.stop()
    if term and last is not None:
        save_term(donkey_config, term, last)
        click.echo(f"saved {term} = {last} in {donkey_config}")
