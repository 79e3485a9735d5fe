"""``car-client`` command line: activate, run the daemon, drive, record, train, export, and
the lap timer (``car-client timer activate|run``).

Each sub-command lives beside the code it drives; heavy imports (TensorFlow,
OpenCV) happen inside the commands, so ``car-client --help`` stays fast.
"""

import click


@click.group()
@click.version_option(package_name="drem", prog_name="car-client")
def main() -> None:
    """drem car client: the daemon that runs on each car."""


# Sub-commands register themselves below (one line each).
from car_client.daemon.cli import activate, run  # noqa: E402

main.add_command(activate)
main.add_command(run)
from car_client.sim.cli import drive; main.add_command(drive)  # noqa: E402, E702, I001
from car_client.training.commands import export_deepracer_cmd, record_cmd, train_cmd  # noqa: E402

main.add_command(record_cmd)
main.add_command(train_cmd)
main.add_command(export_deepracer_cmd)
from car_client.vehicle.calibrate import calibrate  # noqa: E402

main.add_command(calibrate)
from car_client.timer.cli import timer  # noqa: E402

main.add_command(timer)
