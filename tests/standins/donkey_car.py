"""A Donkey Car whose hardware is the simulator: the demo's Donkey car (issue 14).

Only the hardware edge is replaced: the PCA9685 (a :class:`RecordingPca9685Bus` on
the I2C bus; the real ``adafruit_pca9685`` library writes to it) whose steering and
throttle pulses steer a car in :class:`car_client.sim.world.Simulation`, and the
camera, which renders what that car sees (:class:`car_client.sim.camera.Camera`).
Everything else is the real code: the car client daemon, the Donkey backend
(:class:`car_client.vehicle.donkey.DonkeyVehicle`), the pilots.

``python -m tests.standins.donkey_car --config CONFIG --data-dir DIR --track NAME``
runs the daemon like ``car-client run --vehicle donkey`` does on a car.
"""

from __future__ import annotations

import threading
import time

from car_client.sim.camera import Camera
from car_client.sim.tracks import load_track
from car_client.sim.world import Simulation
from car_client.vehicle.donkey import DonkeyConfig
from tests.standins.pca9685 import RecordingPca9685Bus


class SimulatedDonkeyHardware(RecordingPca9685Bus):
    """A PCA9685 whose pulses drive a simulated car, and that car's camera.

    Pulses are turned back into Donkey's angle and throttle with the car's own
    calibration (the inverse of ``steering_pulse``/``throttle_pulse``); the simulator
    advances in real time times ``speedup`` on its own thread."""

    def __init__(self, config: DonkeyConfig, track: str, speedup: float = 1.0) -> None:
        super().__init__(config.PCA9685_I2C_ADDR)
        self.config = config
        self.sim = Simulation(load_track(track))
        self.camera_model = Camera(self.sim.track, "pinhole")
        self.speedup = speedup
        self.angle, self.throttle = 0.0, 0.0
        self.lap_times_ms: list[int] = []
        self._sim_lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="donkey-sim").start()

    def _write(self, data: bytes) -> None:
        super()._write(data)
        c = self.config
        steer = self.pulse(c.STEERING_CHANNEL)
        if steer is not None:
            self.angle = -1.0 + 2.0 * (steer - c.STEERING_LEFT_PWM) / (c.STEERING_RIGHT_PWM - c.STEERING_LEFT_PWM)
        ticks = self.pulse(c.THROTTLE_CHANNEL)
        if ticks is not None:
            stopped = c.THROTTLE_STOPPED_PWM
            self.throttle = ((ticks - stopped) / (c.THROTTLE_FORWARD_PWM - stopped) if ticks >= stopped
                             else (ticks - stopped) / (stopped - c.THROTTLE_REVERSE_PWM))

    def _run(self, dt: float = 0.02) -> None:
        while not self._stop.wait(dt / self.speedup):
            with self._sim_lock:
                events = self.sim.step(-self.angle * self.config.MAX_STEER_DEG,
                                       max(0.0, self.throttle) * self.config.FULL_THROTTLE_MPS, dt)
            for event in events:
                if hasattr(event, "lap_time_ms"):  # a LapResult (ResetEvents have none)
                    self.lap_times_ms.append(event.lap_time_ms)
                    print(f"simulated lap: {event.lap_time_ms} ms, {event.resets} resets", flush=True)

    # the camera ------------------------------------------------------------------
    def read(self):
        """What the simulated car's camera sees now (RGB 120x160)."""
        with self._sim_lock:
            pose = self.sim.pose()
        return self.camera_model.render(pose.x, pose.y, pose.heading, colour=True)

    def close(self) -> None:
        """Stop the simulator thread."""
        self._stop.set()


def main(argv: list[str] | None = None) -> int:
    """Run the car daemon with a simulated Donkey Car until SIGTERM; returns its exit status."""
    import argparse
    import logging
    import sys

    from car_client.daemon.config import load_config
    from car_client.daemon.daemon import Daemon
    from car_client.vehicle.donkey import DonkeyVehicle, PwmOutputs, load_donkey_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--track", default="reinvent_base")
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--donkey-config", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_donkey_config(args.donkey_config)
    hardware = SimulatedDonkeyHardware(config, args.track, args.speedup)
    vehicle = DonkeyVehicle(config, PwmOutputs(config, hardware), hardware)
    started = time.monotonic()
    status = Daemon(load_config(args.config), vehicle, args.data_dir).run()
    print(f"simulated laps (ms) after {time.monotonic() - started:.0f} s: {hardware.lap_times_ms}", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
