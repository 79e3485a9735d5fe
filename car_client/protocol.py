"""The car protocol's vocabulary: the words a car and the server both use on the wire.

The one place for them (docs/car-protocol.md): the car client uses them, and the
server (``drem.fleet``) imports them from here, so the two can never disagree. Plain
data, no imports: the server may import this module without the car's dependencies.
"""

from __future__ import annotations

#: The eight tail-light colours a car shows (the racer's colour, white between races).
TAIL_LIGHTS: tuple[str, ...] = ("white", "red", "orange", "yellow", "green", "blue", "purple", "pink")

#: The states a car reports in its heartbeat's ``state`` field (car_client.daemon.state).
CAR_STATES: tuple[str, ...] = ("idle", "loading_model", "ready", "driving", "stopped", "error")

#: The commands the server may send to a car (``command`` message ``type``).
COMMAND_TYPES: tuple[str, ...] = ("load_model", "delete_models", "start_driving", "stop_driving",
                                  "set_max_speed", "set_tail_light", "emergency_stop", "restart")

#: The model formats a car may be asked to run (``RacerModel.model_format``).
MODEL_FORMATS: tuple[str, ...] = ("deepracer", "keras", "tflite", "savedmodel")
