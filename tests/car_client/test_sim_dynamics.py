"""The vehicle model: speed, steering and grip limits of a 1/18 car."""

from __future__ import annotations

import math

import numpy as np
import pytest

from car_client.sim.dynamics import CarModel, CarParams


def run(car: CarModel, steer: float, speed: float, seconds: float, dt: float = 1 / 60):
    t = 0.0
    car.command(steer, speed, t)
    for _ in range(int(round(seconds / dt))):
        t += dt
        car.step(dt, t)
    return t


def test_acceleration_and_top_speed_limits():
    p = CarParams()
    car = CarModel(p)
    run(car, 0.0, 10.0, 0.5)
    assert car.state.speed == pytest.approx(0.5 * p.max_accel_mps2, rel=0.02)
    run(car, 0.0, 10.0, 3.0)
    assert car.state.speed == pytest.approx(p.max_speed_mps)
    run(car, 0.0, 0.0, 0.25)  # braking is harder than accelerating
    assert car.state.speed == pytest.approx(p.max_speed_mps - 0.25 * p.max_brake_mps2, rel=0.02)


def test_slow_car_follows_the_kinematic_radius():
    p = CarParams()
    car = CarModel(p)
    car.state.speed = 1.0
    run(car, 20.0, 1.0, 3.0)
    assert not car.state.sliding
    radius = p.wheelbase_m / math.tan(math.radians(20.0))
    # the car stays on a circle of that radius around its turning centre
    yaw_rate = 1.0 / radius
    assert car.state.heading == pytest.approx(((3.0 - 0.045) * yaw_rate + math.pi)
                                              % (2 * math.pi) - math.pi, abs=0.15)


def test_grip_limit_makes_a_fast_car_slide_wide():
    p = CarParams()
    fast, slow = CarModel(p), CarModel(p)
    fast.state.speed, slow.state.speed = 4.0, 1.0
    dt = 1 / 60
    fast.command(30.0, 4.0, 0.0)
    slow.command(30.0, 1.0, 0.0)
    headings, speeds = [], []
    for i in range(30):
        speeds.append(fast.state.speed)
        fast.step(dt, (i + 1) * dt)
        slow.step(dt, (i + 1) * dt)
        headings.append(fast.state.heading)
    assert fast.state.sliding and not slow.state.sliding
    # yaw rate never beyond grip / v, so the path radius is at least v^2 / grip
    yaw_rates = np.abs(np.diff(headings)) / dt
    assert np.all(yaw_rates <= p.grip_mps2 / np.array(speeds[1:]) * 1.01)
    kinematic_rate = 4.0 * math.tan(math.radians(30.0)) / p.wheelbase_m
    assert yaw_rates.max() < 0.2 * kinematic_rate
    assert 2.5 < fast.state.speed < 4.0  # sliding scrubs some speed


def test_steering_is_rate_limited_and_clipped():
    p = CarParams()
    car = CarModel(p)
    car.command(90.0, 0.0, 0.0)
    car.step(0.02, 0.02)
    assert car.state.steer_deg == pytest.approx(p.steer_rate_dps * 0.02)
    for i in range(30):
        car.step(0.02, 0.04 + i * 0.02)
    assert car.state.steer_deg == pytest.approx(p.max_steer_deg)


def test_steering_delay_option():
    car = CarModel(CarParams(steering_delay_s=0.1))
    car.command(20.0, 0.0, 0.0)
    t = 0.0
    while t < 0.09:
        t += 0.01
        car.step(0.01, t)
    assert car.state.steer_deg == 0.0
    for _ in range(15):
        t += 0.01
        car.step(0.01, t)
    assert car.state.steer_deg == pytest.approx(20.0)


def test_wheels_surround_the_centre():
    p = CarParams()
    car = CarModel(p)
    car.place(1.0, 2.0, math.pi / 2)
    w = car.wheel_positions()
    assert w.shape == (4, 2)
    assert np.allclose(w.mean(axis=0), [1.0, 2.0])
    assert w[0, 1] == pytest.approx(2.0 + p.wheelbase_m / 2)  # front wheels ahead (+y)
    assert w[0, 0] == pytest.approx(1.0 - p.wheel_track_m / 2)  # FL is to the left (-x)
