"""The camera image a driving model sees, rendered by inverse perspective mapping.

For every camera pixel a fixed table (computed once) holds the point where its ray meets
the ground, in the car's frame (x forward, y left, metres), or marks it as sky. Per
frame those points are moved to the car's pose and the top-down raster is sampled with
OpenCV ``remap`` - about a millisecond for 160x120.

Cameras: ``pinhole`` (120 degrees wide, square pixels) and ``fisheye`` (equidistant
projection, 160 degrees wide, like the DeepRacer's wide-angle lens). Both sit 0.10 m
above the ground, pitched 15 degrees down, 0.08 m ahead of the car's centre; the
pinhole horizon falls on row 48 of 120.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from car_client.sim.raster import Palette, TrackRaster
from car_client.sim.tracks import Track

WIDTH = 160
HEIGHT = 120
CAMERA_KINDS = ("pinhole", "fisheye")


@dataclass(frozen=True)
class CameraSpec:
    """Camera geometry: image size in pixels, angles in degrees, lengths in m."""

    kind: str = "pinhole"
    width: int = WIDTH
    height: int = HEIGHT
    hfov_deg: float | None = None  # default: 120 pinhole, 160 fisheye
    pitch_deg: float = 15.0
    height_m: float = 0.10
    forward_m: float = 0.08

    def fov(self) -> float:
        """Horizontal field of view in degrees."""
        if self.hfov_deg is not None:
            return self.hfov_deg
        return 120.0 if self.kind == "pinhole" else 160.0


def ground_table(spec: CameraSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel's ray meets the ground, in the car frame.

    Returns ``(gx, gy, sky)``: ``gx``/``gy`` float64 ``(height, width)`` metres (forward,
    left; zero on sky pixels) and ``sky`` bool ``(height, width)``.
    Raises ``ValueError`` for an unknown camera kind.
    """
    if spec.kind not in CAMERA_KINDS:
        raise ValueError(f"unknown camera {spec.kind!r} (choose from {', '.join(CAMERA_KINDS)})")
    u = np.arange(spec.width) + 0.5 - spec.width / 2
    v = np.arange(spec.height) + 0.5 - spec.height / 2
    du, dv = np.meshgrid(u, v)
    half = math.radians(spec.fov()) / 2
    if spec.kind == "pinhole":
        f = (spec.width / 2) / math.tan(half)
        cx, cy, cz = du / f, dv / f, np.ones_like(du)
    else:
        f = (spec.width / 2) / half  # equidistant: radius = f * theta
        r = np.hypot(du, dv)
        theta = r / f
        scale = np.where(r > 0, np.sin(theta) / np.maximum(r, 1e-12), 0.0)
        cx, cy, cz = du * scale, dv * scale, np.cos(theta)
    # camera (x right, y down, z forward) -> car (X forward, Y left, Z up), then pitch down
    xu, yu, zu = cz, -cx, -cy
    p = math.radians(spec.pitch_deg)
    x_car = xu * math.cos(p) + zu * math.sin(p)
    z_car = -xu * math.sin(p) + zu * math.cos(p)
    sky = z_car > -1e-3
    t = np.where(sky, 0.0, spec.height_m / np.where(sky, 1.0, -z_car))
    gx = np.where(sky, 0.0, spec.forward_m + t * x_car)
    gy = np.where(sky, 0.0, t * yu)
    return gx, gy, sky


@dataclass(frozen=True)
class Look:
    """Per-drive randomised lighting: ``gain`` x, ``bias`` (0..255 units), ``gamma``,
    ``noise`` (std of per-pixel sensor noise, 0..255 units) and a left-right light
    ``tilt`` (fraction of brightness change across the image)."""

    gain: float = 1.0
    bias: float = 0.0
    gamma: float = 1.0
    noise: float = 0.0
    tilt: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Look:
        """A random but plausible look (indoor venue lighting)."""
        return cls(gain=float(rng.uniform(0.7, 1.3)), bias=float(rng.uniform(-20, 20)),
                   gamma=float(rng.uniform(0.8, 1.25)), noise=float(rng.uniform(1, 6)),
                   tilt=float(rng.uniform(-0.25, 0.25)))


class Camera:
    """Renders what the car's camera sees at a pose.

    track: the track; spec: :class:`CameraSpec` (or ``kind`` shortcut);
    randomize: random colours, texture and lighting, and per-frame sensor noise;
    seed: makes the randomisation repeatable.
    """

    def __init__(self, track: Track, kind: str = "pinhole", spec: CameraSpec | None = None,
                 randomize: bool = False, seed: int | None = None, res: float = 0.01) -> None:
        self.spec = spec or CameraSpec(kind=kind)
        self.rng = np.random.default_rng(seed)
        self.randomize = randomize
        palette = Palette.random(self.rng) if randomize else Palette()
        self.look = Look.random(self.rng) if randomize else Look()
        self.raster = TrackRaster(track, res=res, palette=palette,
                                  texture_rng=self.rng if randomize else None)
        gx, gy, sky = ground_table(self.spec)
        self._gx = gx.astype(np.float32)
        self._gy = gy.astype(np.float32)
        self._sky = sky
        self._sky_colour = np.array(palette.sky, np.uint8)
        self._ground = tuple(int(c) for c in palette.ground)
        # Pixels whose ground footprint exceeds ~3 raster pixels sample the coarse raster.
        footprint = self._footprint(gx, gy, sky)
        self._far = footprint > 3 * self.raster.res
        self._lut = self._look_table(self.look)

    @staticmethod
    def _footprint(gx: np.ndarray, gy: np.ndarray, sky: np.ndarray) -> np.ndarray:
        dx = np.hypot(np.gradient(gx, axis=1), np.gradient(gy, axis=1))
        dy = np.hypot(np.gradient(gx, axis=0), np.gradient(gy, axis=0))
        fp = np.maximum(dx, dy)
        fp[sky] = np.inf
        return fp

    @staticmethod
    def _look_table(look: Look) -> np.ndarray | None:
        if look == Look():
            return None
        x = np.arange(256, dtype=np.float64) / 255.0
        y = 255.0 * np.power(x, look.gamma) * look.gain + look.bias
        return np.clip(np.round(y), 0, 255).astype(np.uint8)

    def _maps(self, x: float, y: float, heading: float, res: float) -> tuple[np.ndarray, ...]:
        c, s = math.cos(heading), math.sin(heading)
        wx = x + c * self._gx - s * self._gy
        wy = y + s * self._gx + c * self._gy
        r = self.raster
        return ((wx - r.x0) / res).astype(np.float32), ((wy - r.y0) / res).astype(np.float32)

    def render(self, x: float, y: float, heading: float, colour: bool = True) -> np.ndarray:
        """The camera image with the car's centre at ``(x, y)`` m facing ``heading`` rad.

        Returns uint8 RGB ``(120, 160, 3)`` when ``colour`` (Donkey Car), else uint8 grey
        ``(120, 160)`` (DeepRacer)."""
        r = self.raster
        mx, my = self._maps(x, y, heading, r.res)
        img = cv2.remap(r.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=self._ground)
        if self._far.any():
            cx, cy = self._maps(x, y, heading, r.coarse_res)
            far = cv2.remap(r.coarse, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=self._ground)
            img[self._far] = far[self._far]
        img[self._sky] = self._sky_colour
        img = self._apply_look(img)
        if colour:
            return img
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)

    def _apply_look(self, img: np.ndarray) -> np.ndarray:
        if self._lut is not None:
            img = cv2.LUT(img, self._lut)
        look = self.look
        if look.tilt:
            ramp = np.linspace(1 - look.tilt, 1 + look.tilt, img.shape[1], dtype=np.float32)
            img = np.clip(img * ramp[None, :, None], 0, 255).astype(np.uint8)
        if self.randomize and look.noise > 0:
            noise = self.rng.normal(0, look.noise, img.shape).astype(np.float32)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
        return img
