"""The demo model builder: builds every format once, then skips while the recipe holds."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from car_client.training import demo_models
from car_client.training.demo_models import Recipe, build_all, is_current, recipe_hash

pytest.importorskip("tensorflow")

# Two tracks, so the recordings run in the builder's process pool.
TINY = Recipe("tiny", "test model", speed_limit_mps=1.5,
              tracks=("reInvent2019_wide", "reinvent_base"), frames_per_track=30, epochs=1,
              deepracer_speeds=(1.0, 1.5))


def test_recipe_hash_follows_the_recipe():
    assert recipe_hash(TINY) == recipe_hash(replace(TINY))
    assert recipe_hash(TINY) != recipe_hash(replace(TINY, epochs=2))
    assert recipe_hash(TINY) != recipe_hash(replace(TINY, tracks=("reinvent_base",)))


def test_real_recipes_are_sane():
    assert demo_models.DEFAULT_MODEL in demo_models.RECIPES
    limits = [r.speed_limit_mps or 4.0 for r in demo_models.RECIPES.values()]
    assert len(set(limits)) == len(limits)  # the demo models differ in speed
    assert any(r.deepracer_speeds for r in demo_models.RECIPES.values())


def test_build_then_skip_when_current(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_models, "RECIPES", {"tiny": TINY})
    monkeypatch.setattr(demo_models, "DEFAULT_MODEL", "tiny")
    lines: list[str] = []
    listing = build_all(tmp_path, log=lines.append)
    assert any("tiny: built" in line for line in lines)
    assert is_current(TINY, tmp_path)
    (model,) = listing["models"]
    assert listing["default"] == "tiny"
    assert set(model["files"]) == {"keras", "tflite", "meta", "plot", "deepracer"}
    assert all(f["bytes"] > 0 for f in model["files"].values())
    assert json.loads((tmp_path / "demo_models.json").read_text()) == listing
    stamp = json.loads((tmp_path / "tiny.recipe.json").read_text())
    assert stamp["frames"] == 60 and stamp["hash"] == recipe_hash(TINY)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}

    lines.clear()
    build_all(tmp_path, log=lines.append)
    assert "tiny: up to date" in lines
    for p in tmp_path.iterdir():
        if p.name != "demo_models.json":
            assert p.stat().st_mtime_ns == mtimes[p.name], p.name

    # A changed recipe is stale; a missing output is stale.
    assert not is_current(replace(TINY, epochs=2), tmp_path)
    (tmp_path / "tiny.tflite").unlink()
    assert not is_current(TINY, tmp_path)
