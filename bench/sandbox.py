"""Benchmark the model process boundary: per-frame latency of a model run in the
confined model process (``load_pilot(path)``) against the same model in this process
(``load_pilot(path, sandbox=False)``), for the three runtimes the car uses:

* a DeepRacer frozen graph the size of DeepRacer's 3-layer shallow CNN;
* Donkey Car's default linear model (5 conv layers) as Keras (tf.function);
* the same model as ``.tflite`` through LiteRT.

DESIGN.md's figures for one frame on this machine: Keras through ``predict_on_batch``
or a ``tf.function`` about 1 ms, tflite about 0.4-0.75 ms. The camera runs at 15-20 Hz,
so a frame has 50-66 ms. Prints median and 95th percentile per frame (ms), the added
latency of the boundary, and the load time of each (seconds; the model process imports
TensorFlow itself). One TensorFlow thread on each side; nothing is pinned, so run it
on an idle machine and read the load average it prints.

    .venv/bin/python bench/sandbox.py [--frames 500]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchlib import test_module  # noqa: E402 - after the thread settings above


def frame_times(pilot, frames: list, n: int) -> list[float]:
    """Milliseconds of ``pilot.act`` for ``n`` frames (after 20 warm-up frames)."""
    for frame in frames[:20]:
        pilot.act(frame)
    times = []
    for i in range(n):
        t = time.perf_counter()
        pilot.act(frames[i % len(frames)])
        times.append((time.perf_counter() - t) * 1000.0)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model process boundary benchmark")
    parser.add_argument("--frames", type=int, default=500)
    args = parser.parse_args(argv)
    import numpy as np

    from car_client.pilots import load_pilot

    mf = test_module("tests/car_client/model_factories.py")
    rng = np.random.default_rng(0)
    grey = [rng.integers(0, 256, (120, 160), dtype=np.uint8) for _ in range(32)]
    rgb = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(32)]
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}; {os.cpu_count()} cores; {args.frames} frames each")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()):  # the converter is chatty
            dr = mf.write_deepracer_model(tmp / "shallow.tar.gz", network="shallow")
            linear = mf.donkey_linear(network="donkey")
            linear.save(tmp / "donkey.keras")
            (tmp / "donkey.tflite").write_bytes(mf.tflite_bytes(linear))
        print(f"{'model':34s} {'in-process':>17s} {'model process':>17s} {'added':>13s} "
              f"{'load (s)':>12s}")
        print(f"{'':34s} {'median':>8s} {'p95':>8s} {'median':>8s} {'p95':>8s} "
              f"{'median':>6s} {'p95':>6s} {'in':>5s} {'proc':>6s}")
        for label, path, frames in [("deepracer shallow CNN (graph)", dr, grey),
                                    ("donkey linear (keras, tf.function)", tmp / "donkey.keras",
                                     rgb),
                                    ("donkey linear (tflite, litert)", tmp / "donkey.tflite",
                                     rgb)]:
            t = time.perf_counter()
            inner = load_pilot(path, sandbox=False)
            load_in = time.perf_counter() - t
            t = time.perf_counter()
            boxed = load_pilot(path)
            load_box = time.perf_counter() - t
            try:
                a = frame_times(inner, frames, args.frames)
                b = frame_times(boxed, frames, args.frames)
            finally:
                boxed.close()
                inner.close()
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{label[:34]:34s} {ma:8.2f} {p95(a):8.2f} {mb:8.2f} {p95(b):8.2f} "
                  f"{mb - ma:6.2f} {p95(b) - p95(a):6.2f} {load_in:5.1f} {load_box:6.1f}")
    print("times in ms per frame; a frame at 20 Hz has 50 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
