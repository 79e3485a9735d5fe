"""Build the demo driving models from nothing: record in the simulator, train, export.

``python -m car_client.training.demo_models --out DIR`` writes, for each recipe in
:data:`RECIPES`, ``NAME.keras``, ``NAME.tflite``, ``NAME.json`` (training facts),
``NAME.loss.png`` and, where the recipe says so, ``NAME.tar.gz`` (a DeepRacer archive),
plus ``demo_models.json`` listing them all (files, sizes in bytes, speed limits, build
seconds, which is the default).

Models differ in speed (the expert's speed limit while recording, so the model learns
that pace; throttle is scaled by Donkey's 4 m/s full throttle) and in skill (how much
driving they saw and how long they trained). Work is cached: a model is rebuilt only
when the SHA-256 of its recipe plus the code and track files it depends on changes
(stored in ``NAME.recipe.json``); ``--force`` rebuilds anyway.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

#: The default demo model (the one ``bench/train.py`` measures).
DEFAULT_MODEL = "steady"
TRAINING_TRACKS = ("reinvent_base", "reInvent2019_track", "2022_summit_speedway")
ALL_LOOP_TRACKS = (*TRAINING_TRACKS, "reInvent2019_wide", "2022_reinvent_champ_cw")


@dataclass(frozen=True)
class Recipe:
    """How to make one demo model. Speeds in m/s, angles in degrees.

    speed_limit_mps: the expert's top speed while recording (``None``: the car's
    4 m/s); frames_per_track: frames recorded on each of ``tracks``; grip_margin: the
    expert's cornering speed as a fraction of the grip limit; deepracer_speeds:
    when set, a DeepRacer archive with these action speeds (m/s) is exported too.
    """

    name: str
    description: str
    model_type: str = "linear"
    speed_limit_mps: float | None = 2.0
    tracks: tuple[str, ...] = TRAINING_TRACKS
    frames_per_track: int = 1000
    noise_deg: float = 8.0
    grip_margin: float = 0.8
    epochs: int = 8
    patience: int = 3
    seed: int = 1
    deepracer_speeds: tuple[float, ...] = ()


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("steady", "Linear Donkey model at up to 2.5 m/s; drives every loop track "
           "without a reset (the default demo model).", speed_limit_mps=2.5,
           frames_per_track=1200, epochs=8,
           deepracer_speeds=(1.0, 1.5, 2.0, 2.5)),
    Recipe("fast", "Linear Donkey model at the car's full 4 m/s, braking for bends; "
           "trained on every loop track.", speed_limit_mps=None, tracks=ALL_LOOP_TRACKS,
           frames_per_track=1200, noise_deg=6.0, epochs=10, seed=2),
    Recipe("cautious", "Categorical Donkey model (15 steering and 20 throttle bins) at up "
           "to 1.5 m/s, trained briefly on two tracks: slow and safe.",
           model_type="categorical", speed_limit_mps=1.5,
           tracks=("reinvent_base", "reInvent2019_track"), frames_per_track=900, epochs=6,
           seed=3),
)}

#: Source files whose change invalidates every cached model.
_CODE_FILES = ("training/tub.py", "training/record.py", "training/model.py",
               "training/train.py", "training/deepracer_export.py",
               "training/demo_models.py", "sim/camera.py", "sim/raster.py",
               "sim/dynamics.py", "sim/tracks.py", "sim/reference.py", "pilots/donkey.py")


def recipe_hash(recipe: Recipe) -> str:
    """SHA-256 (hex) of the recipe, the code it runs and the track files it reads."""
    import car_client
    from car_client.sim.tracks import tracks_dir

    h = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    root = Path(car_client.__file__).parent
    for rel in _CODE_FILES:
        path = root / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.exists() else b"-")
    for track in recipe.tracks:
        h.update((tracks_dir() / f"{track}.npy").read_bytes())
    try:
        from importlib.metadata import version

        h.update(f"keras {version('keras')} tf {version('tensorflow-cpu')}".encode())
    except Exception:  # a missing distribution name only weakens the key
        pass
    return h.hexdigest()


def outputs_of(recipe: Recipe, out_dir: Path) -> dict[str, Path]:
    """The files a recipe produces, by kind (``keras``, ``tflite``, ``meta``, ``plot``,
    optionally ``deepracer``)."""
    files = {"keras": out_dir / f"{recipe.name}.keras",
             "tflite": out_dir / f"{recipe.name}.tflite",
             "meta": out_dir / f"{recipe.name}.json",
             "plot": out_dir / f"{recipe.name}.loss.png"}
    if recipe.deepracer_speeds:
        files["deepracer"] = out_dir / f"{recipe.name}.tar.gz"
    return files


def is_current(recipe: Recipe, out_dir: Path) -> bool:
    """True when the stamp matches the recipe hash and every output file exists."""
    stamp = out_dir / f"{recipe.name}.recipe.json"
    if not stamp.exists() or not all(p.exists() for p in outputs_of(recipe, out_dir).values()):
        return False
    try:
        return json.loads(stamp.read_text()).get("hash") == recipe_hash(recipe)
    except (ValueError, OSError):
        return False


def _record_one(args: tuple) -> object:
    from car_client.training.record import RecordSettings, record

    recipe, i, folder = args
    settings = RecordSettings(track=recipe.tracks[i], frames=recipe.frames_per_track,
                              noise_deg=recipe.noise_deg, randomize=True,
                              seed=recipe.seed * 100 + i, speed_limit_mps=recipe.speed_limit_mps,
                              grip_margin=recipe.grip_margin)
    return record(settings, Path(folder) / recipe.tracks[i])


def record_tracks(recipe: Recipe, folder: Path, workers: int | None = None) -> list:
    """Record one tub per track of ``recipe`` under ``folder``, in ``workers`` processes
    (default: up to 2, the CPU count permitting); returns the ``RecordSummary`` list."""
    jobs = [(recipe, i, str(folder)) for i in range(len(recipe.tracks))]
    workers = workers or min(2, os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [_record_one(job) for job in jobs]
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds TensorFlow
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(_record_one, jobs))


def build_model(recipe: Recipe, out_dir: Path, log=print) -> dict:
    """Record, train and export one recipe into ``out_dir``; returns its stamp
    (hash, seconds, frames, files). Raises what recording or training raises."""
    from car_client.training.deepracer_export import export_deepracer
    from car_client.training.train import train_model

    started = time.monotonic()
    key = recipe_hash(recipe)  # of the code as it is when the build starts
    files = outputs_of(recipe, out_dir)
    frames = 0
    with tempfile.TemporaryDirectory(prefix=f"demo-{recipe.name}-") as tmp:
        summaries = record_tracks(recipe, Path(tmp))
        tubs = [summary.path for summary in summaries]
        for track, summary in zip(recipe.tracks, summaries, strict=True):
            frames += summary.frames
            log(f"  [{recipe.name}] recorded {summary.frames} frames on {track} "
                f"in {summary.wall_s:.1f} s")
        record_s = time.monotonic() - started
        result = train_model(tubs, files["keras"], model_type=recipe.model_type,
                             epochs=recipe.epochs, patience=recipe.patience,
                             seed=recipe.seed, verbose=2 if log is print else 0)
        log(f"  [{recipe.name}] trained {result.epochs_run} epochs in {result.seconds:.1f} s "
            f"(validation loss {result.best_val_loss:.4f})")
    if "deepracer" in files:
        export_deepracer(files["keras"], files["deepracer"], speeds_mps=recipe.deepracer_speeds)
    stamp = {"hash": key, "recipe": asdict(recipe),
             "seconds": round(time.monotonic() - started, 1), "record_s": round(record_s, 1),
             "train_s": round(result.seconds, 1), "frames": frames,
             "epochs_run": result.epochs_run, "val_loss": result.best_val_loss,
             "files": {k: p.name for k, p in files.items()}}
    (out_dir / f"{recipe.name}.recipe.json").write_text(json.dumps(stamp, indent=2))
    return stamp


def build_all(out_dir: str | Path, names: list[str] | None = None, force: bool = False,
              log=print) -> dict:
    """Build (or keep, when current) the named recipes (default: all) in ``out_dir``
    and write ``demo_models.json``. Returns that listing. Raises ``KeyError`` for an
    unknown name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [RECIPES[n] for n in (names or list(RECIPES))]
    started = time.monotonic()
    for recipe in chosen:
        if not force and is_current(recipe, out_dir):
            log(f"{recipe.name}: up to date")
            continue
        log(f"{recipe.name}: building")
        stamp = build_model(recipe, out_dir, log)
        log(f"{recipe.name}: built in {stamp['seconds']:.1f} s")
    listing = {"default": DEFAULT_MODEL, "models": []}
    for recipe in RECIPES.values():
        stamp_path = out_dir / f"{recipe.name}.recipe.json"
        if not is_current(recipe, out_dir):
            continue
        stamp = json.loads(stamp_path.read_text())
        listing["models"].append({
            "name": recipe.name, "description": recipe.description,
            "model_type": recipe.model_type, "speed_limit_mps": recipe.speed_limit_mps or 4.0,
            "tracks": list(recipe.tracks), "build_seconds": stamp["seconds"],
            "files": {kind: {"file": p.name, "bytes": p.stat().st_size}
                      for kind, p in outputs_of(recipe, out_dir).items()}})
    (out_dir / "demo_models.json").write_text(json.dumps(listing, indent=2))
    log(f"demo models in {out_dir} ({time.monotonic() - started:.1f} s)")
    return listing


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out DIR [--only NAME ...] [--force] [--list]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the models")
    parser.add_argument("--only", action="append", choices=sorted(RECIPES),
                        help="build only this model (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    parser.add_argument("--list", action="store_true", help="list recipes and exit")
    args = parser.parse_args(argv)
    if args.list:
        for r in RECIPES.values():
            print(f"{r.name:10s} {r.description}")
        return 0
    build_all(args.out, args.only, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
