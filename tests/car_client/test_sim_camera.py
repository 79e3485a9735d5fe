"""The camera renderer: shapes, horizon, what is where in the image, randomisation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from car_client.sim.camera import Camera, CameraSpec, ground_table
from car_client.sim.raster import Palette
from car_client.sim.tracks import load_track


@pytest.fixture(scope="module")
def track():
    return load_track("reinvent_base")


@pytest.fixture(scope="module")
def pinhole(track):
    return Camera(track, "pinhole")


def straight_pose(track):
    """A pose on the centre line of the long bottom straight, facing along it."""
    return track.point_at(2.0)


def test_shapes_and_types(track, pinhole):
    x, y, h = straight_pose(track)
    rgb = pinhole.render(x, y, h)
    grey = pinhole.render(x, y, h, colour=False)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert grey.shape == (120, 160) and grey.dtype == np.uint8


def test_pinhole_horizon_is_row_48():
    gx, gy, sky = ground_table(CameraSpec(kind="pinhole"))
    assert sky[:48].all()
    assert not sky[48:].any()
    # lower rows see nearer ground; the centre column looks straight ahead
    assert np.all(np.diff(gx[48:, 80]) < 0)
    assert abs(gy[119, 79] + gy[119, 80]) < 1e-9


def test_fisheye_sees_wider_than_pinhole():
    p_gx, p_gy, p_sky = ground_table(CameraSpec(kind="pinhole"))
    f_gx, f_gy, f_sky = ground_table(CameraSpec(kind="fisheye"))
    assert np.abs(f_gy[119]).max() > np.abs(p_gy[119]).max()
    assert f_sky.sum() != p_sky.sum()
    with pytest.raises(ValueError, match="unknown camera"):
        ground_table(CameraSpec(kind="stereo"))


def test_scene_content_on_a_straight(track, pinhole):
    x, y, h = straight_pose(track)
    img = pinhole.render(x, y, h).astype(int)
    pal = Palette()
    sky = np.array(pal.sky)
    assert np.abs(img[10] - sky).max() <= 1  # sky at the top
    # bottom rows: dark track surface on both sides of the centre line
    bottom = img[115]
    surface = np.abs(bottom - np.array(pal.surface)).sum(axis=1) < 30
    assert surface[10:40].all() and surface[120:150].all()
    # the yellow dashed centre line and white borders appear somewhere below the horizon
    ground = img[50:].reshape(-1, 3)
    assert (np.abs(ground - np.array(pal.centre_line)).sum(axis=1) < 60).sum() > 20
    assert (np.abs(ground - np.array(pal.border)).sum(axis=1) < 60).sum() > 50


def test_image_follows_the_pose(track, pinhole):
    x, y, h = straight_pose(track)
    a = pinhole.render(x, y, h, colour=False)
    b = pinhole.render(x, y, h + 0.3, colour=False)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_randomisation_is_seeded_and_changes_the_look(track, pinhole):
    x, y, h = straight_pose(track)
    plain = pinhole.render(x, y, h)
    one = Camera(track, randomize=True, seed=7)
    two = Camera(track, randomize=True, seed=7)
    other = Camera(track, randomize=True, seed=8)
    a1, a2, b = one.render(x, y, h), two.render(x, y, h), other.render(x, y, h)
    assert np.array_equal(a1, a2)  # same seed, same first frame
    assert np.abs(a1.astype(int) - plain.astype(int)).mean() > 3
    assert np.abs(a1.astype(int) - b.astype(int)).mean() > 3
    # sensor noise: the next frame of the same pose differs slightly
    again = one.render(x, y, h)
    diff = np.abs(again.astype(int) - a1.astype(int))
    assert 0 < diff.mean() < 20


def test_render_is_fast(track, pinhole):
    x, y, h = straight_pose(track)
    pinhole.render(x, y, h)
    t0 = time.perf_counter()
    for _ in range(30):
        pinhole.render(x, y, h, colour=False)
    assert (time.perf_counter() - t0) / 30 < 0.015  # ~1 ms measured; generous for shared CI
