"""A top-down PNG of the driven line over the track."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from car_client.sim.raster import TrackRaster
from car_client.sim.tracks import Track

LINE_RGB = (220, 30, 30)
RESET_RGB = (40, 90, 255)


def _runs(points: list[tuple[float, float]]) -> list[np.ndarray]:
    """Split a path at ``(nan, nan)`` markers into runs of at least two points."""
    runs, current = [], []
    for x, y in points:
        if math.isnan(x):
            if len(current) > 1:
                runs.append(np.array(current))
            current = []
        else:
            current.append((x, y))
    if len(current) > 1:
        runs.append(np.array(current))
    return runs


def write_path_png(track: Track, path: list[tuple[float, float]], out: str | Path,
                   reset_points: list[tuple[float, float]] = (), res: float = 0.02) -> Path:
    """Draw ``path`` (``(x, y)`` m points, ``nan`` rows break the line) and the reset
    points over ``track`` at ``res`` m/px, north up, and write a PNG to ``out``.

    Raises ``ValueError`` when OpenCV cannot write the file."""
    raster = TrackRaster(track, res=res, margin=0.4)
    img = raster.image.copy()
    scale = 16
    for run in _runs(path):
        pts = np.round(raster.to_pixels(run) * scale).astype(np.int32)
        cv2.polylines(img, [pts], False, LINE_RGB, thickness=2, lineType=cv2.LINE_AA, shift=4)
    for x, y in reset_points:
        c = np.round(raster.to_pixels(np.array([x, y]))).astype(int)
        cv2.drawMarker(img, (int(c[0]), int(c[1])), RESET_RGB, cv2.MARKER_TILTED_CROSS, 14, 3)
    img = np.ascontiguousarray(img[::-1, :, ::-1])  # north up, RGB -> BGR for OpenCV
    out = Path(out)
    if not cv2.imwrite(str(out), img):
        raise ValueError(f"could not write {out}")
    return out
