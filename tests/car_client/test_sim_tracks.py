"""Track geometry on every real track file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from car_client.sim import tracks as tracks_mod
from car_client.sim.tracks import Track, list_tracks, load_track

# Lap lengths (m) from shared/tracks/README.md.
README_LENGTHS = {
    "reInvent2019_track": 23.12,
    "reInvent2019_wide": 16.64,
    "reinvent_base": 17.71,
    "2022_reinvent_champ_cw": 33.28,
    "2022_summit_speedway": 25.17,
    "Straight_track": 5.71,
}
LOOPS = [n for n in README_LENGTHS if n != "Straight_track"]


def test_every_track_file_is_known():
    assert sorted(list_tracks()) == sorted(README_LENGTHS)


@pytest.mark.parametrize("name", sorted(README_LENGTHS))
def test_length_matches_readme_and_no_repeated_waypoints(name):
    t = load_track(name)
    assert t.is_loop == (name in LOOPS)
    assert abs(t.length - README_LENGTHS[name]) / README_LENGTHS[name] < 0.01
    assert t.seg_len.min() > 1e-6  # repeated waypoints were dropped
    assert np.all(np.isfinite(t.seg_heading))


@pytest.mark.parametrize("name", sorted(README_LENGTHS))
def test_following_the_centre_line_covers_one_lap(name):
    """Walking the centre line in 5 cm steps and summing the projected progress gives
    the lap length."""
    t = load_track(name)
    hint, total, prev_s = None, 0.0, 0.0
    for s in np.arange(0.05, t.length, 0.05):
        x, y, _ = t.point_at(s)
        p = t.project(x, y, hint)
        hint = p.segment
        assert p.distance < 1e-6
        assert abs(p.s - s) < 1e-6
        total += p.s - prev_s
        prev_s = p.s
    total += t.length - prev_s
    assert total == pytest.approx(README_LENGTHS[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(README_LENGTHS))
def test_on_track_against_the_borders(name):
    t = load_track(name)
    s = np.linspace(0, t.length, 40, endpoint=False)
    centre = np.array([t.point_at(v)[:2] for v in s])
    assert t.on_track(centre).all()
    # 10 cm beyond each border, along the local normal, is off the track (except where
    # that point lands on another part of the track, inside a hairpin)
    tested = 0
    for v in s[1:-1]:
        x, y, h = t.point_at(v)
        seg = t.project(x, y).segment
        half = 0.5 * float(np.hypot(*(t.inner[seg] - t.outer[seg])))
        nx, ny = -math.sin(h), math.cos(h)
        for side in (1, -1):
            beyond = (x + side * nx * (half + 0.1), y + side * ny * (half + 0.1))
            inside = (x + side * nx * (half - 0.08), y + side * ny * (half - 0.08))
            assert t.on_track(np.array([inside])).all(), (name, v, side)
            if t.project(*beyond).distance > half + 0.05:
                assert not t.on_track(np.array([beyond])).any(), (name, v, side)
                tested += 1
    assert tested >= 0.8 * 2 * (len(s) - 2)


def test_offset_sign_and_start_line():
    t = load_track("reinvent_base")
    x, y, h = t.point_at(3.0)
    left = t.project(x - 0.2 * math.sin(h), y + 0.2 * math.cos(h))
    right = t.project(x + 0.2 * math.sin(h), y - 0.2 * math.cos(h))
    assert left.offset == pytest.approx(0.2, abs=1e-3)
    assert right.offset == pytest.approx(-0.2, abs=1e-3)
    a, b = t.start_line()
    mid = (a + b) / 2
    assert np.allclose(mid, t.centre[0], atol=1e-3)
    assert np.hypot(*(a - b)) == pytest.approx(t.width, rel=0.05)
    inner, outer = t.border_polygons()
    assert inner.shape == outer.shape == t.centre.shape


def test_repeated_waypoints_are_dropped():
    w = np.load(tracks_mod.tracks_dir() / "reInvent2019_wide.npy")
    raw = np.hypot(*np.diff(w[:, :2], axis=0).T)
    assert (raw < 1e-6).sum() >= 1  # the file really has one
    t = Track.from_array("x", w)
    assert len(t.centre) == len(w) - 1 - int((raw < 1e-6).sum())


def test_tracks_dir_env_and_errors(tmp_path, monkeypatch):
    np.save(tmp_path / "tiny.npy", np.load(tracks_mod.tracks_dir() / "Straight_track.npy"))
    monkeypatch.setenv("DREM_TRACKS_DIR", str(tmp_path))
    assert list_tracks() == ["tiny"]
    assert load_track("tiny.npy").name == "tiny"
    with pytest.raises(FileNotFoundError, match="known tracks: tiny"):
        load_track("nowhere")
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        Track.from_array("bad", np.zeros((5, 4)))


@pytest.mark.parametrize("name", LOOPS)
def test_on_track_near_a_segment_agrees_with_the_full_test(name):
    t = load_track(name)
    rng = np.random.default_rng(5)
    for s in rng.uniform(0, t.length, 60):
        x, y, h = t.point_at(s)
        pts = np.array([x, y]) + rng.uniform(-0.7, 0.7, (4, 2))
        seg = t.project(x, y).segment
        assert np.array_equal(t.on_track(pts, near=seg), t.on_track(pts))
