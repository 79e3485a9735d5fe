"""Lap timing at the start line from the simulation clock.

The timer follows the car's progress along the centre line as an unwrapped distance
``u`` (m): it grows when the car drives forward, shrinks when it reverses, and jumps by
a whole lap length never. The start line is at ``s = 0``; lap ``k`` ends the moment
``u`` reaches ``k * length``. So a lap is counted exactly once per forward crossing that
completes it; reversing over the line and driving forward over it again counts nothing.
The crossing time is interpolated inside the physics step and laps are reported in
integer milliseconds.

On an open track (not a loop) a "lap" is one run from the start to the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from car_client.sim.tracks import Track


@dataclass(frozen=True)
class LapResult:
    """A completed lap: ``lap_time_ms`` integer ms, ``resets`` during the lap,
    ``lap_number`` 1-based, ``finished_at_s`` sim time (s) of the crossing."""

    lap_number: int
    lap_time_ms: int
    resets: int
    finished_at_s: float


class LapTimer:
    """Progress and lap counting for one car on ``track``; start at ``start_time_s``
    with the car on the start line."""

    def __init__(self, track: Track, start_time_s: float = 0.0) -> None:
        self.track = track
        self.restart(start_time_s)

    def restart(self, start_time_s: float) -> None:
        """Start a fresh run: car on the start line at sim time ``start_time_s`` (s)."""
        self.u = 0.0
        self.segment = 0
        self.lap_start_s = start_time_s
        self.laps_done = 0
        self.resets_in_lap = 0
        self.resets_total = 0
        self.laps: list[LapResult] = []

    @property
    def s(self) -> float:
        """Current distance along the centre line, in ``[0, length)`` (m)."""
        return self.track.wrap_s(self.u)

    def _next_boundary(self) -> float:
        return (self.laps_done + 1) * self.track.length

    def update(self, x: float, y: float, t_prev: float, t_now: float) -> LapResult | None:
        """Follow the car to ``(x, y)`` m, moved during sim time ``t_prev..t_now`` (s).

        Returns the :class:`LapResult` if this move completed a lap, else ``None``."""
        tr = self.track
        proj = tr.project(x, y, hint=self.segment)
        self.segment = proj.segment
        u_prev = self.u
        if tr.is_loop:
            ds = proj.s - self.s
            half = tr.length / 2
            ds = (ds + half) % tr.length - half
            self.u = u_prev + ds
        else:
            self.u = proj.s
        end = self._next_boundary() if tr.is_loop else tr.length - 1e-3
        if self.u < end or self.u <= u_prev:
            return None
        frac = (end - u_prev) / (self.u - u_prev)
        t_cross = t_prev + min(max(frac, 0.0), 1.0) * (t_now - t_prev)
        return self._complete(t_cross)

    def _complete(self, t_cross: float) -> LapResult:
        self.laps_done += 1
        lap = LapResult(lap_number=self.laps_done,
                        lap_time_ms=int(round((t_cross - self.lap_start_s) * 1000.0)),
                        resets=self.resets_in_lap, finished_at_s=t_cross)
        self.laps.append(lap)
        self.lap_start_s = t_cross
        self.resets_in_lap = 0
        if not self.track.is_loop:
            self.u = 0.0
            self.segment = 0
        return lap

    def count_reset(self, u_new: float) -> None:
        """Record a reset and move the progress to ``u_new`` (m, where the marshal put
        the car); the caller never moves it forward of the last on-track progress."""
        self.resets_in_lap += 1
        self.resets_total += 1
        self.u = u_new
        self.segment = self.track.project(*self.track.point_at(u_new)[:2]).segment
