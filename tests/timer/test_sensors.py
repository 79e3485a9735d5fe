"""The timer's inputs on gpiozero's own mock pins (the only fake: there is no GPIO here):
edges, pull-up/down, the bounce time at its edge, two sensors, the config checks."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from car_client.daemon.config import ConfigError
from car_client.timer import sensors as sensors_module
from car_client.timer.config import SensorConfig, parse_sensors
from car_client.timer.sensors import Sensors


class Clock:
    """The device clock the sensors read, moved by hand (ms)."""

    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(sensors_module, "device_clock_ms", fake)
    return fake


def crossing(pin, config: SensorConfig) -> None:
    """The car crosses: the pin goes to its crossing level and back."""
    if config.edge == "falling":
        pin.drive_low()
        pin.drive_high()
    else:
        pin.drive_high()
        pin.drive_low()


def test_bounce_time_at_its_edge_and_two_sensors(clock):
    seen = []
    configs = [SensorConfig(1, 17, bounce_ms=50), SensorConfig(2, 27, bounce_ms=50)]
    inputs = Sensors(configs, lambda sensor, at: seen.append((sensor, at)), pin_factory=MockFactory())
    try:
        one, two = inputs.pin_of(1), inputs.pin_of(2)
        assert one.state and two.state          # pulled up: idle high
        crossing(one, configs[0])
        clock.ms += 49
        crossing(one, configs[0])               # 49 ms: chatter of the same contact, dropped
        crossing(two, configs[1])               # the other sensor has its own bounce time
        clock.ms += 1
        crossing(one, configs[0])               # 50 ms after the last crossing: a crossing
        assert seen == [(1, 1_000_000), (2, 1_000_049), (1, 1_000_050)]
        assert inputs.bounced == 1
    finally:
        inputs.close()


def test_pull_down_sensor_crosses_on_the_rising_edge(clock):
    seen = []
    config = SensorConfig(1, 17, pull_up=False, edge="rising", bounce_ms=0)
    inputs = Sensors([config], lambda sensor, at: seen.append(at), pin_factory=MockFactory())
    try:
        pin = inputs.pin_of(1)
        assert not pin.state                    # pulled down: idle low
        pin.drive_high()
        clock.ms += 3
        pin.drive_low()                         # the falling edge is not a crossing
        clock.ms += 3
        pin.drive_high()
        assert seen == [1_000_000, 1_000_006]
    finally:
        inputs.close()


def test_pull_up_sensor_on_the_rising_edge_counts_the_release(clock):
    seen = []
    config = SensorConfig(1, 22, pull_up=True, edge="rising", bounce_ms=0)
    inputs = Sensors([config], lambda sensor, at: seen.append(at), pin_factory=MockFactory())
    try:
        pin = inputs.pin_of(1)
        pin.drive_low()
        assert seen == []
        clock.ms += 120
        pin.drive_high()                        # the strip is released: the rising edge
        assert seen == [1_000_120]
    finally:
        inputs.close()


@pytest.mark.parametrize(("raw", "message"), [
    ([], "a list of 1-2 objects"),
    ([{"pin": 17}, {"pin": 27}, {"pin": 22}], "a list of 1-2 objects"),
    ([{"pin": 40}], "GPIO pin must be 0-27"),
    ([{"pin": 17, "edge": "both"}], "edge must be rising or falling"),
    ([{"pin": 17, "bounce_ms": -1}], "bounce_ms must be 0-10000"),
    ([{"pin": 17}, {"pin": 17}], "two sensors on the same GPIO pin"),
    ([{"edge": "rising"}], "lacks its GPIO pin"),
])
def test_bad_wiring_is_refused_with_a_clear_message(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_sensors(raw)
