"""The track drawn once as a top-down RGB raster (about 1 cm per pixel).

Pixel ``(row, col)`` has its centre at world ``(x0 + col * res, y0 + row * res)``: rows
grow with +y, so the array is upside down compared with a map (flip it for display).
The camera samples this raster; the PNG writer draws over a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from car_client.sim.tracks import Track

_SHIFT = 4  # cv2 fixed-point bits for sub-pixel drawing
_SCALE = 1 << _SHIFT


@dataclass(frozen=True)
class Palette:
    """RGB colours (0..255 each) of the scene."""

    ground: tuple[int, int, int] = (72, 118, 64)
    surface: tuple[int, int, int] = (38, 38, 42)
    border: tuple[int, int, int] = (236, 236, 236)
    centre_line: tuple[int, int, int] = (236, 186, 48)
    start_line: tuple[int, int, int] = (236, 236, 236)
    sky: tuple[int, int, int] = (178, 196, 214)

    @classmethod
    def random(cls, rng: np.random.Generator, spread: int = 30) -> Palette:
        """The default palette with every channel moved by up to ``spread`` at random."""
        base = cls()

        def jitter(c: tuple[int, int, int]) -> tuple[int, int, int]:
            # mostly brighter/darker, a little tinted
            shift = rng.integers(-spread, spread + 1) + rng.integers(-spread // 3, spread // 3 + 1, 3)
            return tuple(int(v) for v in np.clip(np.array(c) + shift, 0, 255))

        return cls(*(jitter(getattr(base, f)) for f in cls.__dataclass_fields__))


class TrackRaster:
    """A top-down image of ``track``.

    res: metres per pixel (default 0.01); margin: ground drawn around the track (m);
    texture_rng: when given, low-frequency blotches and grain are added (randomised
    texture); line widths are metres.
    """

    def __init__(self, track: Track, res: float = 0.01, margin: float = 1.5,
                 palette: Palette | None = None, texture_rng: np.random.Generator | None = None,
                 border_width: float = 0.05, centre_width: float = 0.03,
                 dash_length: float = 0.15) -> None:
        self.track = track
        self.res = float(res)
        self.palette = palette or Palette()
        x_min, y_min, x_max, y_max = track.bounds
        self.x0 = x_min - margin
        self.y0 = y_min - margin
        self.width = int(np.ceil((x_max - x_min + 2 * margin) / res)) + 1
        self.height = int(np.ceil((y_max - y_min + 2 * margin) / res)) + 1
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = self.palette.ground
        self._draw(img, border_width, centre_width, dash_length)
        if texture_rng is not None:
            img = _add_texture(img, texture_rng)
        self.image = img
        #: A 4x coarser copy, sampled for far-away camera pixels (less aliasing).
        self.coarse = cv2.resize(img, (max(1, self.width // 4), max(1, self.height // 4)),
                                 interpolation=cv2.INTER_AREA)
        self.coarse_res = self.res * self.width / self.coarse.shape[1]

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """World points ``(K, 2)`` m -> float pixel coordinates ``(K, 2)`` as (col, row)."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[..., 0] - self.x0) / self.res, (xy[..., 1] - self.y0) / self.res],
                        axis=-1)

    def _fixed(self, xy: np.ndarray) -> np.ndarray:
        return np.round(self.to_pixels(xy) * _SCALE).astype(np.int32)

    def _px(self, metres: float) -> int:
        return max(1, int(round(metres / self.res)))

    def _draw(self, img: np.ndarray, border_w: float, centre_w: float, dash: float) -> None:
        t = self.track
        pal = self.palette
        quads = [self._fixed(q) for q in t.quads]
        cv2.fillPoly(img, quads, pal.surface, lineType=cv2.LINE_AA, shift=_SHIFT)
        for border in (t.inner, t.outer):
            cv2.polylines(img, [self._fixed(border)], t.is_loop, pal.border,
                          thickness=self._px(border_w), lineType=cv2.LINE_AA, shift=_SHIFT)
        # dashed centre line
        s_values = np.arange(0.0, t.length, dash)
        for k in range(0, len(s_values) - 1, 2):
            pts = [t.point_at(s)[:2] for s in np.linspace(s_values[k], s_values[k + 1], 4)]
            cv2.polylines(img, [self._fixed(np.array(pts))], False, pal.centre_line,
                          thickness=self._px(centre_w), lineType=cv2.LINE_AA, shift=_SHIFT)
        a, b = t.start_line()
        cv2.line(img, tuple(self._fixed(a)), tuple(self._fixed(b)), pal.start_line,
                 thickness=self._px(centre_w), lineType=cv2.LINE_AA, shift=_SHIFT)


def _add_texture(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blotches (about 30 cm across) and per-pixel grain, both random in strength."""
    h, w = img.shape[:2]
    blotch_amp = rng.uniform(5, 25)
    grain_amp = rng.uniform(2, 10)
    small = rng.normal(0, 1, (max(2, h // 30), max(2, w // 30), 1)).astype(np.float32)
    blotches = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    grain = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    out = img.astype(np.float32) + blotch_amp * blotches + grain_amp * grain
    return np.clip(out, 0, 255).astype(np.uint8)
