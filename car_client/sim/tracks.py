"""Track geometry for real DeepRacer track files (``.npy``, shape ``(N, 6)``, metres).

Columns: centre x, y; inner border x, y; outer border x, y. A track is a loop when
its first row equals its last. Repeated waypoints (zero-length segments) are dropped
before anything else, so tangents are always defined.

The drivable surface is the area between the two borders, cut into one quadrilateral
per segment ``(inner[i], inner[i+1], outer[i+1], outer[i])``; a point is on the track
when it lies inside any of them. That is the region bounded by the border polygons,
and it stays correct for tracks whose borders are not simple polygons.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

#: Environment variable naming the folder that holds the ``.npy`` track files.
TRACKS_DIR_ENV = "DREM_TRACKS_DIR"


def tracks_dir() -> Path:
    """Return the folder of track files: ``$DREM_TRACKS_DIR``, else ``shared/tracks``
    beside the repository root."""
    env = os.environ.get(TRACKS_DIR_ENV)
    if env:
        return Path(env)
    import car_client

    return Path(car_client.__file__).resolve().parents[2] / "shared" / "tracks"


def list_tracks() -> list[str]:
    """Names (file stems) of every ``.npy`` track in :func:`tracks_dir`, sorted."""
    folder = tracks_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.npy"))


def load_track(name: str) -> Track:
    """Load a track by name (``"reinvent_base"``, with or without ``.npy``) or by file path.

    Raises ``FileNotFoundError`` (listing the known names) when there is no such file and
    ``ValueError`` when the array is not ``(N, 6)`` with at least 3 distinct waypoints.
    """
    path = Path(name)
    if not (path.suffix == ".npy" and path.is_file()):
        stem = name[:-4] if name.endswith(".npy") else name
        path = tracks_dir() / f"{stem}.npy"
    if not path.is_file():
        known = ", ".join(list_tracks()) or "none"
        raise FileNotFoundError(f"no track {name!r} in {tracks_dir()} (known tracks: {known})")
    return Track.from_array(path.stem, np.load(path))


@dataclass(frozen=True)
class Projection:
    """Where a point meets the centre line.

    s: distance along the centre line from the start line (m, in ``[0, length)``);
    offset: signed distance from the centre line (m, positive to the left of travel);
    segment: index of the centre-line segment; distance: ``abs(offset)`` to that segment.
    """

    s: float
    offset: float
    segment: int
    distance: float


class Track:
    """One track: centre line, borders, progress, on-track test and start line.

    Arrays are ``float64`` metres: ``centre``, ``inner``, ``outer`` have shape ``(N, 2)``
    with distinct consecutive points (for a loop the closing duplicate is removed and
    segment ``N-1`` joins the last point back to the first).
    """

    def __init__(self, name: str, centre: np.ndarray, inner: np.ndarray, outer: np.ndarray,
                 is_loop: bool) -> None:
        self.name = name
        self.centre = np.ascontiguousarray(centre, dtype=np.float64)
        self.inner = np.ascontiguousarray(inner, dtype=np.float64)
        self.outer = np.ascontiguousarray(outer, dtype=np.float64)
        self.is_loop = is_loop
        ends = np.roll(self.centre, -1, axis=0) if is_loop else self.centre[1:]
        starts = self.centre if is_loop else self.centre[:-1]
        self.seg_start = starts
        self.seg_vec = ends - starts
        self.seg_len = np.hypot(self.seg_vec[:, 0], self.seg_vec[:, 1])
        self.seg_dir = self.seg_vec / self.seg_len[:, None]
        self.seg_heading = np.arctan2(self.seg_vec[:, 1], self.seg_vec[:, 0])
        self.cum_s = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.cum_s[-1])
        self.n_segments = len(self.seg_len)
        # Search window for tracking projections: about +-1 m of centre line.
        self.window = int(max(3, math.ceil(1.0 / float(np.median(self.seg_len))) + 2))

    @classmethod
    def from_array(cls, name: str, waypoints: np.ndarray) -> Track:
        """Build a track from a raw ``(N, 6)`` waypoint array (metres).

        Drops consecutive repeated centre points; a loop is detected when the first
        row equals the last. Raises ``ValueError`` for a malformed array.
        """
        w = np.asarray(waypoints, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != 6:
            raise ValueError(f"track {name!r}: expected an (N, 6) array, got {w.shape}")
        is_loop = bool(np.all(w[0] == w[-1]))
        step = np.hypot(*np.diff(w[:, 0:2], axis=0).T)
        keep = np.concatenate([[True], step > 1e-6])
        w = w[keep]
        if is_loop and np.hypot(*(w[-1, 0:2] - w[0, 0:2])) <= 1e-6:
            w = w[:-1]
        if len(w) < 3:
            raise ValueError(f"track {name!r}: fewer than 3 distinct waypoints")
        return cls(name, w[:, 0:2], w[:, 2:4], w[:, 4:6], is_loop)

    # ------------------------------------------------------------------ geometry

    @cached_property
    def width(self) -> float:
        """Mean track width (m), ``|inner - outer|``."""
        return float(np.mean(np.hypot(*(self.inner - self.outer).T)))

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` of everything drawn (m)."""
        pts = np.vstack([self.centre, self.inner, self.outer])
        return (float(pts[:, 0].min()), float(pts[:, 1].min()),
                float(pts[:, 0].max()), float(pts[:, 1].max()))

    def start_line(self) -> tuple[np.ndarray, np.ndarray]:
        """The start/finish line: ``(inner_point, outer_point)``, each shape ``(2,)`` (m)."""
        return self.inner[0].copy(), self.outer[0].copy()

    def border_polygons(self) -> tuple[np.ndarray, np.ndarray]:
        """The two borders as closed rings ``(inner (N, 2), outer (N, 2))`` (m).

        For an open track both are polylines from the start to the end."""
        return self.inner.copy(), self.outer.copy()

    @cached_property
    def quads(self) -> np.ndarray:
        """The surface cut into quads, shape ``(segments, 4, 2)`` (m), one per segment."""
        nxt = (np.arange(self.n_segments) + 1) % len(self.centre)
        idx = np.arange(self.n_segments)
        return np.stack([self.inner[idx], self.inner[nxt], self.outer[nxt], self.outer[idx]],
                        axis=1)

    def wrap_s(self, s: float) -> float:
        """Map a distance along the line into ``[0, length)`` (loop) or ``[0, length]``."""
        if self.is_loop:
            return float(s % self.length)
        return float(min(max(s, 0.0), self.length))

    def point_at(self, s: float) -> tuple[float, float, float]:
        """Centre-line point at distance ``s`` (m): ``(x, y, heading)`` with heading in
        radians (direction of travel)."""
        s = self.wrap_s(s)
        i = int(np.searchsorted(self.cum_s, s, side="right") - 1)
        i = min(max(i, 0), self.n_segments - 1)
        t = (s - self.cum_s[i]) / self.seg_len[i]
        p = self.seg_start[i] + t * self.seg_vec[i]
        return float(p[0]), float(p[1]), float(self.seg_heading[i])

    def project(self, x: float, y: float, hint: int | None = None) -> Projection:
        """Project a point (m) on the centre line.

        With ``hint`` (a segment index from a previous projection) only segments within
        about 1 m of it are searched, so a car is never teleported to a nearby part of
        the track; without it every segment is searched.
        """
        if hint is None or self.n_segments <= 2 * self.window + 1:
            idx = np.arange(self.n_segments)
        else:
            idx = np.arange(hint - self.window, hint + self.window + 1)
            idx = idx % self.n_segments if self.is_loop else idx[(idx >= 0) & (idx < self.n_segments)]
        start = self.seg_start[idx]
        vec = self.seg_vec[idx]
        rel = np.array([x, y]) - start
        t = np.clip(np.einsum("ij,ij->i", rel, vec) / (self.seg_len[idx] ** 2), 0.0, 1.0)
        foot = start + t[:, None] * vec
        d = np.hypot(x - foot[:, 0], y - foot[:, 1])
        k = int(np.argmin(d))
        seg = int(idx[k])
        cross = vec[k, 0] * rel[k, 1] - vec[k, 1] * rel[k, 0]
        sign = 1.0 if cross >= 0 else -1.0
        s = self.cum_s[seg] + t[k] * self.seg_len[seg]
        if self.is_loop:
            s %= self.length
        return Projection(s=float(s), offset=sign * float(d[k]), segment=seg,
                          distance=float(d[k]))

    def on_track(self, points: np.ndarray, near: int | None = None) -> np.ndarray:
        """Which points lie on the drivable surface.

        points: shape ``(K, 2)`` (m). Returns a ``(K,)`` bool array. A point inside any
        segment quad (crossing-number test) is on the track. With ``near`` (a segment
        index) only the quads within about 1 m of it are tested - enough for the wheels
        of a car on that segment, and several times faster.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        q = self.quads  # (M, 4, 2)
        if near is not None and self.n_segments > 2 * self.window + 1:
            idx = np.arange(near - self.window, near + self.window + 1)
            idx = idx % self.n_segments if self.is_loop else idx[(idx >= 0) & (idx < self.n_segments)]
            q = q[idx]
        a = q[None, :, :, :]                       # (1, M, 4, 2)
        b = np.roll(q, -1, axis=1)[None, :, :, :]  # next vertex
        px = pts[:, None, None, 0]
        py = pts[:, None, None, 1]
        ay, by = a[..., 1], b[..., 1]
        straddles = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = a[..., 0] + (py - ay) * (b[..., 0] - a[..., 0]) / (by - ay)
        crossings = np.sum(straddles & (px < x_cross), axis=2)
        return np.any(crossings % 2 == 1, axis=1)
