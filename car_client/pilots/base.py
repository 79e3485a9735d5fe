"""The one pilot interface: a camera image in, a steering angle and a speed out.

Conventions everywhere in the car client: steering in degrees, positive turns LEFT
(as in DeepRacer action spaces); speed in m/s. Images are uint8: grey ``(120, 160)``
for DeepRacer models, RGB ``(120, 160, 3)`` for Donkey Car models.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

#: Camera modes a pilot can ask for.
GREY = "grey"
RGB = "rgb"

#: Image size every model on the car must accept (height, width).
IMAGE_SHAPE = (120, 160)


@dataclass(frozen=True)
class Action:
    """What a pilot wants: ``steering_deg`` (degrees, +left) and ``speed_mps`` (m/s)."""

    steering_deg: float
    speed_mps: float


@dataclass(frozen=True)
class Pose:
    """Ground truth of the simulated car, for pilots that drive without a camera.

    x, y: centre of the car (m); heading: rad, counter-clockwise from +x; speed: m/s;
    segment: index of the nearest centre-line segment (a search hint).
    """

    x: float
    y: float
    heading: float
    speed: float
    segment: int = 0


class Pilot(abc.ABC):
    """A driving model ready to run.

    ``camera_mode`` is :data:`GREY`, :data:`RGB`, or ``None`` for a pilot that needs
    only the :class:`Pose` (the reference pilot). ``act`` is called from one thread.
    """

    camera_mode: str | None = GREY
    name: str = ""

    @abc.abstractmethod
    def act(self, image: np.ndarray | None, pose: Pose | None = None) -> Action:
        """Decide for one frame. ``image``: uint8 ``(120, 160)`` grey or ``(120, 160, 3)``
        RGB as per ``camera_mode``; ``pose``: ground truth when available."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


def check_image(image: np.ndarray | None, mode: str) -> np.ndarray:
    """Validate a camera frame for ``mode`` and return it as a uint8 array.

    Raises ``ValueError`` when the frame is missing or not ``(120, 160)`` grey /
    ``(120, 160, 3)`` RGB."""
    if image is None:
        raise ValueError("this pilot needs a camera image")
    img = np.asarray(image)
    want = IMAGE_SHAPE if mode == GREY else (*IMAGE_SHAPE, 3)
    if img.shape != want:
        raise ValueError(f"camera frame has shape {img.shape}, the model needs {want}")
    return img
