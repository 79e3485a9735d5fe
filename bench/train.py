"""Benchmark of behaviour cloning in the simulator (car_client.training).

1. time to record and train the default demo model (``steady``) from nothing;
2. that model (its ``.tflite``, and its DeepRacer archive) on every loop track in the
   tracks folder, 10 laps each, with the camera's lighting/colour/texture/noise
   randomisation on and the grip limit in force: laps completed of 10, resets per lap,
   mean lap time; beside it the reference pilot in the same run at the same speed limit;
3. the fastest demo model (``fast``) the same way.

Targets: the default model completes 10/10 laps with no reset on every loop track
(including those it was not trained on); the fastest model's mean lap is within 15 % of
the reference pilot's at the same speed limit.

Run: ``.venv/bin/python bench/train.py [--out DIR] [--reuse] [--laps 10] [--json FILE]
[--all]`` (``--reuse`` keeps current cached models in ``--out`` instead of timing a fresh
build; ``--all`` also drives the other demo models). Exit status 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from car_client.pilots import load_pilot
from car_client.sim.tracks import list_tracks, load_track
from car_client.training import demo_models
from car_client.training.evaluate import LapStats, drive_laps, drive_reference

FAST_MODEL = "fast"
LAP_TIME_TOLERANCE = 0.15


def loop_tracks() -> list[str]:
    """Names of the loop tracks (first waypoint equals the last)."""
    return [name for name in list_tracks() if load_track(name).is_loop]


def _fmt(stats: LapStats) -> str:
    lap = "-" if math.isnan(stats.mean_lap_ms) else f"{stats.mean_lap_ms / 1000:6.2f} s"
    return f"{stats.laps:2d}/{stats.laps_wanted} {stats.resets_per_lap:5.2f} {lap:>8s}"


def bench_model(name: str, out_dir: Path, laps: int, seed: int, formats: list[str]) -> dict:
    """Drive model ``name`` (each format) and the reference pilot on every loop track."""
    recipe = demo_models.RECIPES[name]
    limit = recipe.speed_limit_mps or 4.0
    files = demo_models.outputs_of(recipe, out_dir)
    rows = []
    print(f"\n{name}: speed limit {limit} m/s, trained on {', '.join(recipe.tracks)}")
    print(f"{'track':24s} {'pilot':10s} {'laps':>5s} {'rst/lap':>5s} {'mean lap':>8s} "
          f"{'vs ref':>7s}")
    for track in loop_tracks():
        ref = drive_reference(track, laps, max_speed_mps=limit)
        print(f"{track:24s} {'reference':10s} {_fmt(ref)}")
        row = {"track": track, "trained_on": track in recipe.tracks,
               "reference": ref.as_dict()}
        for fmt in formats:
            if fmt not in files:
                continue
            pilot = load_pilot(files[fmt])
            stats = drive_laps(pilot, track, laps, max_speed_mps=limit, randomize=True,
                               seed=seed)
            pilot.close()
            ratio = stats.mean_lap_ms / ref.mean_lap_ms - 1.0
            row[fmt] = stats.as_dict() | {"vs_reference": ratio}
            seen = "" if row["trained_on"] else "  (unseen track)"
            print(f"{'':24s} {fmt:10s} {_fmt(stats)} {ratio:+7.1%}{seen}")
        rows.append(row)
    return {"model": name, "speed_limit_mps": limit, "tracks": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="behaviour-cloning benchmark")
    parser.add_argument("--out", help="model folder (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep current cached models instead of timing a fresh build")
    parser.add_argument("--laps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7, help="camera randomisation seed")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--all", action="store_true",
                        help="also drive the other demo models (figures only, no target)")
    args = parser.parse_args(argv)
    tmp = None
    if args.out:
        out_dir = Path(args.out)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-train-")
        out_dir = Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"laps": args.laps, "seed": args.seed, "models": []}

    default = demo_models.DEFAULT_MODEL
    if args.reuse and demo_models.is_current(demo_models.RECIPES[default], out_dir):
        stamp = json.loads((out_dir / f"{default}.recipe.json").read_text())
        print(f"{default}: reusing the cached build ({stamp['seconds']} s when built)")
    else:
        started = time.monotonic()
        stamp = demo_models.build_model(demo_models.RECIPES[default], out_dir)
        stamp["seconds"] = round(time.monotonic() - started, 1)
    print(f"{default}: record {stamp['record_s']} s + train {stamp['train_s']} s "
          f"(+ export) = {stamp['seconds']} s for {stamp['frames']} frames, "
          f"{stamp['epochs_run']} epochs")
    report["build"] = {k: stamp[k] for k in ("seconds", "record_s", "train_s", "frames",
                                             "epochs_run", "val_loss")}
    report["models"].append(bench_model(default, out_dir, args.laps, args.seed,
                                        ["tflite", "deepracer"]))
    if not demo_models.is_current(demo_models.RECIPES[FAST_MODEL], out_dir):
        demo_models.build_model(demo_models.RECIPES[FAST_MODEL], out_dir)
    report["models"].append(bench_model(FAST_MODEL, out_dir, args.laps, args.seed,
                                        ["tflite"]))

    if args.all:
        for name in demo_models.RECIPES:
            if name in (default, FAST_MODEL):
                continue
            if not demo_models.is_current(demo_models.RECIPES[name], out_dir):
                demo_models.build_model(demo_models.RECIPES[name], out_dir)
            report["models"].append(bench_model(name, out_dir, args.laps, args.seed,
                                                ["tflite"]))
    clean = all(r["tflite"]["laps"] == args.laps and r["tflite"]["resets"] == 0
                for r in report["models"][0]["tracks"])
    fast_ok = all(r["tflite"]["laps"] == args.laps
                  and r["tflite"]["vs_reference"] <= LAP_TIME_TOLERANCE
                  for r in report["models"][1]["tracks"])
    report["targets"] = {"default_clean_on_every_loop_track": clean,
                         "fast_within_15pct_of_reference": fast_ok}
    print(f"\ntarget: {default} {args.laps}/{args.laps} laps, no reset, every loop track: "
          f"{'met' if clean else 'MISSED'}")
    print(f"target: {FAST_MODEL} mean lap within {LAP_TIME_TOLERANCE:.0%} of the reference: "
          f"{'met' if fast_ok else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0 if clean and fast_ok else 1


if __name__ == "__main__":
    sys.exit(main())
