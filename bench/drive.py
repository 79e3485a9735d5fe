"""Benchmark the simulated drive on ONE core.

Measures frames per second of camera render + model inference + physics step for
* a DeepRacer-shaped model (frozen graph with the real tensor names, the size of
  DeepRacer's 3-layer shallow CNN), through the real ``.tar.gz`` loader;
* a Donkey Car linear model (Donkey's default 5-conv CNN) as Keras and as tflite;
and simulated seconds per wall second for the reference pilot without a camera.

Targets: >= 30 frames/s per core, >= 10x real time for the reference pilot.

    .venv/bin/python bench/drive.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
import time
from pathlib import Path

# one core, one thread everywhere - set before TensorFlow and OpenCV load
for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchlib import test_module  # noqa: E402 - after the thread settings above


def pin_one_core() -> int:
    """Pin this process to one CPU; returns its number."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def timed_drive(pilot, track, seconds: float, camera_kind: str = "pinhole") -> dict:
    """Drive ``pilot`` for ``seconds`` of sim time as fast as possible; per-stage times."""
    from car_client.sim.camera import Camera
    from car_client.sim.world import Simulation

    camera = Camera(track, kind=camera_kind) if pilot.camera_mode else None
    sim = Simulation(track)
    dt = 1 / 15
    t_render = t_infer = t_step = 0.0
    frames = 0
    wall0 = time.perf_counter()
    while sim.t < seconds:
        pose = sim.pose()
        a = time.perf_counter()
        image = None
        if camera is not None:
            image = camera.render(pose.x, pose.y, pose.heading, colour=pilot.camera_mode == "rgb")
        b = time.perf_counter()
        action = pilot.act(image, pose)
        c = time.perf_counter()
        sim.step(action.steering_deg, action.speed_mps, dt)
        d = time.perf_counter()
        t_render += b - a
        t_infer += c - b
        t_step += d - c
        frames += 1
    wall = time.perf_counter() - wall0
    return {"frames": frames, "fps": frames / wall, "render_ms": 1000 * t_render / frames,
            "infer_ms": 1000 * t_infer / frames, "step_ms": 1000 * t_step / frames,
            "realtime": sim.t / wall, "resets": sim.resets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="sim seconds per model")
    parser.add_argument("--track", default="reinvent_base")
    args = parser.parse_args()
    core = pin_one_core()

    import cv2

    cv2.setNumThreads(1)
    # imported here, after pin_one_core(): TensorFlow sizes its thread pools when it loads
    from car_client.pilots import load_pilot
    from car_client.sim.loop import DriveLoop
    from car_client.sim.reference import ReferencePilot
    from car_client.sim.tracks import list_tracks, load_track
    from car_client.sim.world import Simulation
    mf = test_module("tests/car_client/model_factories.py")

    track = load_track(args.track)
    print(f"pinned to CPU {core}; track {track.name}; {args.seconds:.0f} sim s per model")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the converter is chatty
            dr = mf.write_deepracer_model(tmp / "shallow.tar.gz", "discrete", network="shallow")
            linear = mf.donkey_linear(network="donkey")
            linear.save(tmp / "donkey.keras")
            (tmp / "donkey.tflite").write_bytes(mf.tflite_bytes(linear))
        print(f"built models in {time.perf_counter() - t0:.1f} s")
        for label, path in [("deepracer shallow CNN (frozen graph)", dr),
                            ("donkey linear (keras, tf.function)", tmp / "donkey.keras"),
                            ("donkey linear (tflite, litert)", tmp / "donkey.tflite")]:
            pilot = load_pilot(path)
            r = timed_drive(pilot, track, args.seconds)
            rows.append((label, r))
            print(f"{label:40s} {r['fps']:7.1f} frames/s  (render {r['render_ms']:.2f} ms, "
                  f"inference {r['infer_ms']:.2f} ms, step {r['step_ms']:.2f} ms)")
    print("reference pilot, headless (no camera), 3 laps per loop track:")
    for name in list_tracks():
        t = load_track(name)
        if not t.is_loop:
            continue
        summary = DriveLoop(Simulation(t), ReferencePilot(t), speedup=math.inf).run(laps=3)
        mean = sum(lap.lap_time_ms for lap in summary.laps) / len(summary.laps)
        print(f"  {name:24s} {summary.realtime_factor:6.1f}x real time, mean lap "
              f"{mean / 1000:.3f} s, resets {summary.resets}")
    worst = min(r["fps"] for _, r in rows)
    print(f"target >= 30 frames/s per core: {'met' if worst >= 30 else 'NOT met'} "
          f"(slowest {worst:.1f})")


if __name__ == "__main__":
    main()
