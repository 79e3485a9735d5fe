"""``car-client record``, ``car-client train`` and ``car-client export-deepracer``.

Only click is imported at module level: the simulator, TensorFlow and Keras load inside
the commands, so ``car-client --help`` stays fast.
"""

from __future__ import annotations

import sys

import click


@click.command("record")
@click.option("--track", required=True, help="Track name in the tracks folder (or a .npy path).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Tub folder to write (created; an existing tub is continued).")
@click.option("--laps", type=float, default=None,
              help="Stop after this many laps of progress along the centre line.")
@click.option("--frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--noise", "noise_deg", type=float, default=8.0, show_default=True,
              help="Std of the steering noise added to the executed steering (degrees).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--randomize/--no-randomize", default=False, show_default=True,
              help="Random colours, lighting, texture and sensor noise per episode.")
@click.option("--speed-limit", "speed_limit", type=float, default=None,
              help="Cap on the expert's speed (m/s); default: the car's max.")
@click.option("--camera", "camera_kind", type=click.Choice(["pinhole", "fisheye"]),
              default="pinhole", show_default=True)
def record_cmd(track, out, laps, frames, noise_deg, seed, randomize, speed_limit,
               camera_kind) -> None:
    """Drive the reference pilot with noisy steering and record a Donkey tub v2.

    Each frame is labelled with the expert's clean steering and speed; the start pose
    is varied every episode. Without --laps or --frames, 3 laps are recorded."""
    from car_client.training.record import RecordSettings, record

    if laps is None and frames is None:
        laps = 3.0
    settings = RecordSettings(track=track, laps=laps, frames=frames, noise_deg=noise_deg,
                              seed=seed, randomize=randomize, speed_limit_mps=speed_limit,
                              camera_kind=camera_kind)
    try:
        summary = record(settings, out,
                         progress=lambda n: click.echo(f"  {n} frames", err=True))
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"recorded {summary.frames} frames ({summary.laps:.2f} laps, "
               f"{summary.episodes} episodes, {summary.resets} off-track) in "
               f"{summary.wall_s:.1f} s -> {summary.path}")


@click.command("train")
@click.option("--tub", "tubs", multiple=True, required=True, type=click.Path(exists=True),
              help="Tub folder (repeat for several).")
@click.argument("more_tubs", nargs=-1, type=click.Path(exists=True))
@click.option("--type", "model_type", type=click.Choice(["linear", "categorical"]),
              default="linear", show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Model path (.keras); .tflite, .json and .loss.png are written beside it.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--patience", type=int, default=3, show_default=True,
              help="Early stopping: epochs without validation improvement.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-augment", is_flag=True, help="Turn off brightness/blur/grey/flip.")
def train_cmd(tubs, more_tubs, model_type, out, epochs, batch_size, patience, seed,
              no_augment) -> None:
    """Train a Donkey-style CNN on tubs; export .keras and .tflite, plot the loss.

    Extra tub folders may follow the options (--tub A B C)."""
    from car_client.training.train import train_model
    from car_client.training.tub import TubError

    try:
        result = train_model(list(tubs) + list(more_tubs), out, model_type=model_type,
                             epochs=epochs, batch_size=batch_size, patience=patience,
                             seed=seed, augment=not no_augment,
                             verbose=1 if sys.stdout.isatty() else 2)
    except (TubError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"trained {result.model_type} on {result.n_train} frames "
               f"({result.n_val} validation) for {result.epochs_run} epochs in "
               f"{result.seconds:.1f} s; best validation loss {result.best_val_loss:.4f}")
    for path in (result.keras_path, result.tflite_path, result.meta_path, result.plot_path):
        click.echo(f"  {path}")


def _speeds(ctx, param, value):
    if not value:
        return None
    try:
        speeds = [float(v) for part in value for v in part.replace(",", " ").split()]
    except ValueError as exc:
        raise click.BadParameter("speeds are numbers in m/s, e.g. --speeds 1.0,1.5,2.0") from exc
    if not speeds or min(speeds) <= 0:
        raise click.BadParameter("speeds must be above 0 m/s")
    return speeds


@click.command("export-deepracer")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True,
                                                                      dir_okay=False),
              help="Trained Keras model (.keras).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Archive to write (.tar.gz).")
@click.option("--speeds", multiple=True, callback=_speeds,
              help="Speeds of the action space in m/s (comma separated or repeated).")
@click.option("--steering-steps", type=int, default=15, show_default=True,
              help="Steering angles in the action space, evenly over +-max steering.")
def export_deepracer_cmd(model_path, out, speeds, steering_steps) -> None:
    """Package a trained model as an AWS DeepRacer model archive (frozen graph)."""
    from car_client.training.deepracer_export import export_deepracer

    try:
        meta = export_deepracer(model_path, out, speeds_mps=speeds,
                                steering_steps=steering_steps)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    speeds_used = sorted({a["speed"] for a in meta["action_space"]})
    click.echo(f"wrote {out}: {len(meta['action_space'])} actions, speeds {speeds_used} m/s")
