"""Shared fixtures for the car client tests: small models built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.car_client import model_factories as mf


@pytest.fixture(scope="session")
def deepracer_models(tmp_path_factory) -> dict[str, Path]:
    """DeepRacer-format archives: ``discrete`` (PPO), ``continuous`` (PPO), ``sac``
    (continuous SAC) and ``flat`` (discrete, ``model.pb`` at the archive root)."""
    d = tmp_path_factory.mktemp("deepracer")
    return {
        "discrete": mf.write_deepracer_model(d / "discrete.tar.gz", "discrete"),
        "continuous": mf.write_deepracer_model(d / "continuous.tar.gz", "continuous"),
        "sac": mf.write_deepracer_model(d / "sac.tar.gz", "continuous", algorithm="sac"),
        "flat": mf.write_deepracer_model(d / "flat.tar.gz", "discrete", layout="flat", seed=3),
    }


@pytest.fixture(scope="session")
def donkey_models(tmp_path_factory) -> dict[str, Path]:
    """Donkey models in every format: ``linear.keras``, ``linear.h5``, ``linear.tflite``,
    ``linear.zip`` (SavedModel), ``categorical.keras``, ``categorical.tflite``."""
    d = tmp_path_factory.mktemp("donkey")
    linear = mf.donkey_linear(seed=1)
    categorical = mf.donkey_categorical(seed=2)
    linear.save(d / "linear.keras")
    linear.save(d / "linear.h5")
    categorical.save(d / "categorical.keras")
    (d / "linear.tflite").write_bytes(mf.tflite_bytes(linear))
    (d / "categorical.tflite").write_bytes(mf.tflite_bytes(categorical))
    linear.export(str(d / "saved"), verbose=False)
    shutil.make_archive(str(d / "linear"), "zip", d / "saved")
    names = ["linear.keras", "linear.h5", "linear.tflite", "linear.zip", "categorical.keras",
             "categorical.tflite"]
    return {n: d / n for n in names}
