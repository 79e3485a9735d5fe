"""The timer's inputs through gpiozero: one ``DigitalInputDevice`` per sensor.

A pressure strip, IR beam or reed switch closes (or opens) a contact as the car
crosses; the configured ``edge`` of the pin's level marks the crossing. With
``pull_up`` the pin idles high and the sensor pulls it low, so the crossing is the
``falling`` edge (gpiozero then reads the pin as active when low). The time of a
crossing is the device's monotonic clock in whole ms at the edge: gpiozero's pin
drivers stamp each edge (lgpio with the kernel's ``CLOCK_MONOTONIC`` time of the
interrupt), and the callback takes that stamp back through the device's public
``active_time`` / ``inactive_time``, so a callback that runs late does not move it.

Contact chatter: an edge within ``bounce_ms`` of the sensor's last crossing is dropped
here (counted in :attr:`Sensors.bounced`) and never reported; this is done in software
so it behaves the same on every pin factory (gpiozero's mock pins ignore
``bounce_time``). Longer repeats (a car's second axle, a bounce of the strip) are
reported and judged by the server's debounce, so they are kept with their reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalInputDevice

from car_client.timer.config import SensorConfig

log = logging.getLogger(__name__)


def device_clock_ms() -> float:
    """The device clock: ``CLOCK_MONOTONIC`` in milliseconds (origin: boot)."""
    return time.monotonic_ns() / 1e6


def device_time_ms() -> int:
    """The device clock in whole milliseconds (what the protocol sends)."""
    return time.monotonic_ns() // 1_000_000


class Sensors:
    """Watches the configured inputs; calls ``on_crossing(sensor_number, device_time_ms)``
    once per crossing (from gpiozero's callback thread: it must not block).

    ``pin_factory``: a gpiozero pin factory (None: gpiozero's default, the real pins;
    tests and the demo pass ``gpiozero.pins.mock.MockFactory()``).
    """

    def __init__(self, sensors: list[SensorConfig], on_crossing: Callable[[int, int], None],
                 pin_factory=None) -> None:
        self.configs = list(sensors)
        self._on_crossing = on_crossing
        self._lock = threading.Lock()
        self._last_ms: dict[int, int] = {}
        self.bounced = 0
        self.devices: dict[int, DigitalInputDevice] = {}
        for config in self.configs:
            device = DigitalInputDevice(config.pin, pull_up=config.pull_up, pin_factory=pin_factory)
            # gpiozero reads a pulled-up pin as active when low: the crossing edge is then its deactivation
            # for "rising" and its activation for "falling", and the reverse for a pulled-down pin.
            on_activation = (config.edge == "rising") != config.pull_up
            handler = self._handler(config, device, on_activation)
            if on_activation:
                device.when_activated = handler
            else:
                device.when_deactivated = handler
            self.devices[config.sensor] = device

    def _handler(self, config: SensorConfig, device: DigitalInputDevice, on_activation: bool) -> Callable:
        def crossed(*_args) -> None:
            since_edge_s = (device.active_time if on_activation else device.inactive_time) or 0.0
            now_ms = round(device_clock_ms() - since_edge_s * 1000)
            with self._lock:
                last = self._last_ms.get(config.sensor)
                if last is not None and now_ms - last < config.bounce_ms:
                    self.bounced += 1
                    return
                self._last_ms[config.sensor] = now_ms
            self._on_crossing(config.sensor, now_ms)

        return crossed

    def pin_of(self, sensor: int):
        """The gpiozero pin object of a sensor (tests and the mock input drive it)."""
        return self.devices[sensor].pin

    def close(self) -> None:
        """Release the pins."""
        for device in self.devices.values():
            device.close()
