"""``car-client drive``: drive a model (or the reference pilot) on a simulated track,
without a server, and print each lap."""

from __future__ import annotations

import math
import statistics
import sys

import click


@click.command("drive")
@click.option("--track", default="reinvent_base", show_default=True,
              help="Track name from the tracks folder ($DREM_TRACKS_DIR).")
@click.option("--model", "model", required=True,
              help="Model file (.tar.gz, .h5, .keras, .tflite, .zip) or 'reference'.")
@click.option("--format", "model_format", default=None,
              type=click.Choice(["deepracer", "keras", "tflite", "savedmodel"]),
              help="Model format (default: from the file name).")
@click.option("--laps", default=3, show_default=True, type=click.IntRange(1),
              help="Laps to drive.")
@click.option("--max-speed", default=None, type=click.FloatRange(min=0.01),
              help="Speed cap in m/s.")
@click.option("--speedup", default=math.inf, type=click.FloatRange(min=0.0, min_open=True),
              help="1 = real time, k = k times faster; default as fast as possible.")
@click.option("--max-sim-seconds", default=None, type=click.FloatRange(min=1.0),
              help="Give up after this much simulated time (default 90 s per lap).")
@click.option("--camera", default="pinhole", show_default=True,
              type=click.Choice(["pinhole", "fisheye"]))
@click.option("--randomize", is_flag=True, help="Random colours, texture, light and noise.")
@click.option("--seed", default=None, type=int, help="Seed for the randomisation.")
@click.option("--png", "png", default=None, type=click.Path(dir_okay=False),
              help="Write a top-down PNG of the driven line here.")
def drive(track, model, model_format, laps, max_speed, speedup, max_sim_seconds, camera,
          randomize, seed, png):
    """Drive MODEL on a simulated TRACK and print lap times (integer ms) and resets."""
    from car_client.pilots import load_pilot
    from car_client.sim.camera import Camera
    from car_client.sim.loop import DriveLoop
    from car_client.sim.reference import ReferencePilot
    from car_client.sim.tracks import load_track
    from car_client.sim.world import Simulation

    try:
        the_track = load_track(track)
        pilot = (ReferencePilot(the_track) if model == "reference"
                 else load_pilot(model, model_format))
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    cam = None
    if pilot.camera_mode is not None:
        cam = Camera(the_track, kind=camera, randomize=randomize, seed=seed)
    sim = Simulation(the_track, record_path=png is not None)

    def on_lap(lap):
        click.echo(f"lap {lap.lap_number}: {lap.lap_time_ms} ms "
                   f"({lap.lap_time_ms / 1000:.3f} s), resets {lap.resets}")
        sys.stdout.flush()

    loop = DriveLoop(sim, pilot, cam, max_speed_mps=max_speed, speedup=speedup, on_lap=on_lap)
    click.echo(f"driving {pilot.name or model} on {the_track.name} "
               f"({the_track.length:.2f} m{'' if the_track.is_loop else ', open track'}) "
               f"for {laps} lap(s)")
    summary = loop.run(laps=laps, max_sim_s=max_sim_seconds or 90.0 * laps)
    times = [lap.lap_time_ms for lap in summary.laps]
    click.echo(f"summary: {len(times)}/{laps} laps, resets {summary.resets}, "
               f"sim {summary.sim_time_s:.1f} s in {summary.wall_time_s:.1f} s wall "
               f"({summary.realtime_factor:.1f}x real time, {summary.frames} frames)")
    if times:
        click.echo(f"best {min(times)} ms, mean {round(statistics.mean(times))} ms")
    if png:
        from car_client.sim.plot import write_path_png

        write_path_png(the_track, sim.path, png, sim.reset_points)
        click.echo(f"wrote {png}")
    if len(times) < laps:
        raise click.ClickException(f"only {len(times)} of {laps} laps in "
                                   f"{summary.sim_time_s:.0f} simulated seconds")
