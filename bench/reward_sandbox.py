"""Benchmark of the reward-function sandbox: reward calls per second through the
confined worker (``drem.training.reward_sandbox.RewardSandbox``), against the same
function called in this process.

DeepRacer's example "follow the centre line" reward function on ``reinvent_base``'s real
waypoints (the per-track constants sent once), with steps from a drive of the reference
pilot (real ``x``, ``y``, ``heading``, ``distance_from_center``, ...). Batches of 1, 15
(one second of driving at 15 Hz), 256 and 2048 steps; ``checked`` runs every step
through ``check_params`` in the parent, ``unchecked`` trusts the simulator's steps.

Target: at least 5,000 calls/s for a batch of 256 or more (an RL rollout), so the
sandbox is never what limits training (the simulator steps a few hundred times a
second). Also prints the worker's start time (s) and the load average: the machine's
other work shows in every figure.

    .venv/bin/python bench/reward_sandbox.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import time

from car_client.sim.reference import ReferencePilot
from car_client.sim.tracks import load_track
from car_client.sim.world import Simulation
from drem.training.reward_examples import FOLLOW_THE_CENTRE_LINE
from drem.training.reward_sandbox import RewardSandbox

TARGET_CALLS_PER_S = 5000


def reference_steps(track_name: str, n: int) -> tuple[dict, list[dict]]:
    """``(constants, steps)``: the track's per-track params and ``n`` per-step params from
    the reference pilot driving it at 15 Hz (metres, degrees, m/s, per cent)."""
    track = load_track(track_name)
    sim = Simulation(track)
    pilot = ReferencePilot(track)
    constants = {"track_width": track.width, "track_length": track.length,
                 "waypoints": [(float(x), float(y)) for x, y in track.centre]}
    steps, seg = [], 0
    for i in range(n):
        pose = sim.pose()
        proj = track.project(pose.x, pose.y, hint=seg)
        seg = proj.segment
        action = pilot.act(None, pose)
        steps.append({  # plain floats: numpy scalars serialise several times slower
            "all_wheels_on_track": True, "x": float(pose.x), "y": float(pose.y),
            "distance_from_center": proj.distance, "is_left_of_center": proj.offset > 0,
            "heading": math.degrees(math.atan2(math.sin(pose.heading), math.cos(pose.heading))),
            "progress": 100.0 * proj.s / track.length, "steps": i + 1,
            "speed": max(float(pose.speed), 0.0),
            "steering_angle": max(-30.0, min(30.0, float(action.steering_deg))),
            "closest_waypoints": [seg, (seg + 1) % len(track.centre)], "is_offtrack": False,
            "is_reversed": False, "is_crashed": False})
        sim.step(action.steering_deg, action.speed_mps, 1 / 15)
    return constants, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="reward-function sandbox benchmark")
    parser.add_argument("--calls", type=int, default=20000, help="calls per batch size")
    parser.add_argument("--track", default="reinvent_base")
    args = parser.parse_args(argv)
    constants, steps = reference_steps(args.track, 2048)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores; "
          f"{args.track}, {len(constants['waypoints'])} waypoints")
    namespace: dict = {}
    exec(FOLLOW_THE_CENTRE_LINE, namespace)  # noqa: S102 - our own example, the in-process baseline
    fn = namespace["reward_function"]
    full = [{**s, **constants} for s in steps]
    t = time.perf_counter()
    for i in range(args.calls):
        fn(dict(full[i % len(full)]))
    print(f"in process: {args.calls / (time.perf_counter() - t):,.0f} calls/s")
    t = time.perf_counter()
    sandbox = RewardSandbox(FOLLOW_THE_CENTRE_LINE, constants)
    print(f"worker start (confine, load): {time.perf_counter() - t:.2f} s; "
          f"confinement {sandbox.confinement}")
    worst = math.inf
    with sandbox:
        print(f"{'batch':>6s} {'checked calls/s':>16s} {'unchecked calls/s':>18s}")
        for batch in (1, 15, 256, 2048):
            rates = {}
            for checked in (True, False):  # checked=True: the steps need no check_params
                sandbox.rewards(steps[:batch], checked=checked)  # warm-up
                n_batches = max(1, args.calls // batch) if batch > 1 else min(args.calls, 2000)
                t = time.perf_counter()
                for b in range(n_batches):
                    start = (b * batch) % (len(steps) - batch + 1)
                    sandbox.rewards(steps[start:start + batch], checked=checked)
                rates[checked] = n_batches * batch / (time.perf_counter() - t)
            print(f"{batch:6d} {rates[False]:16,.0f} {rates[True]:18,.0f}")
            if batch >= 256:
                worst = min(worst, rates[False])
    ok = worst >= TARGET_CALLS_PER_S
    print(f"target >= {TARGET_CALLS_PER_S:,} calls/s for batches of 256+ (checked): "
          f"{'met' if ok else 'MISSED'} ({worst:,.0f})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
