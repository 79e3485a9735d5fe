"""Issue 18: a racer's model must not run code on a car (the server's half).

Real models built with TensorFlow (the car client's model factories: PPO discrete and
continuous, SAC, Donkey linear and categorical as .h5, .keras, .tflite and SavedModel)
pass inspection; the two hostile models of the issue (a SavedModel zip that calls
``tf.io.write_file``, a DeepRacer archive whose ``model.pb`` holds a ``WriteFile`` op)
end ``invalid`` at upload with the op named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drem.models_mgr.inspect import ModelRejected, inspect_model_file
from drem.models_mgr.scan_jobs import run_once
from tests.car_client import model_factories as mf


@pytest.fixture(scope="module")
def real_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real")
    linear, categorical = mf.donkey_linear(seed=1), mf.donkey_categorical(seed=2)
    models = {
        "ppo-discrete.tar.gz": mf.write_deepracer_model(d / "ppo-discrete.tar.gz", "discrete"),
        "ppo-continuous.tar.gz": mf.write_deepracer_model(d / "ppo-continuous.tar.gz",
                                                          "continuous"),
        "sac.tar.gz": mf.write_deepracer_model(d / "sac.tar.gz", "continuous", algorithm="sac"),
        "shallow.tar.gz": mf.write_deepracer_model(d / "shallow.tar.gz", network="shallow"),
        "linear.zip": mf.savedmodel_zip(linear, d / "linear.zip"),
        "categorical.zip": mf.savedmodel_zip(categorical, d / "categorical.zip"),
    }
    for name, model in (("linear", linear), ("categorical", categorical)):
        for ext in ("keras", "h5"):
            model.save(d / f"{name}.{ext}")
            models[f"{name}.{ext}"] = d / f"{name}.{ext}"
        models[f"{name}.tflite"] = d / f"{name}.tflite"
        models[f"{name}.tflite"].write_bytes(mf.tflite_bytes(model))
    return models


@pytest.fixture(scope="module")
def hostile_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    target = str(d / "pwned")
    return {
        "hostile.tar.gz": mf.write_deepracer_model(d / "hostile.tar.gz", write_file_to=target),
        "hostile.zip": mf.hostile_savedmodel_zip(d / "hostile.zip", target),
    }


REAL = ["ppo-discrete.tar.gz", "ppo-continuous.tar.gz", "sac.tar.gz", "shallow.tar.gz",
        "linear.keras", "linear.h5", "linear.tflite", "linear.zip", "categorical.keras",
        "categorical.h5", "categorical.tflite", "categorical.zip"]


@pytest.mark.parametrize("name", REAL)
def test_real_deepracer_and_donkey_models_pass(real_models, name):
    info = inspect_model_file(real_models[name], name)
    assert info.format == {"gz": "deepracer", "zip": "savedmodel", "tflite": "tflite"}.get(
        name.rsplit(".", 1)[1], "keras")


@pytest.mark.parametrize("name, where", [("hostile.tar.gz", "agent/model.pb"),
                                         ("hostile.zip", "saved_model.pb")])
def test_hostile_models_are_rejected_naming_write_file(hostile_models, name, where):
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model_file(hostile_models[name], name)
    assert where in excinfo.value.reason and "'WriteFile'" in excinfo.value.reason




def _upload_and_scan(app, client, headers, path: Path) -> dict:
    resp = client.post("/api/models", query_string={"filename": path.name},
                       data=path.read_bytes(),
                       headers=headers | {"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        run_once()
    return client.get(f"/api/models/{resp.get_json()['id']}", headers=headers).get_json()


@pytest.mark.parametrize("name", ["hostile.tar.gz", "hostile.zip"])
def test_hostile_uploads_end_invalid_with_the_op_named(models_app, client, factory,
                                                       hostile_models, name):
    racer_h = factory.headers("racer")
    model = _upload_and_scan(models_app, client, racer_h, hostile_models[name])
    assert model["status"] == "invalid", model
    assert "'WriteFile'" in model["status_reason"]
    assert "not allowed on the cars" in model["status_reason"]


@pytest.mark.parametrize("name", ["sac.tar.gz", "categorical.zip", "linear.h5"])
def test_real_uploads_become_available(models_app, client, factory, real_models, name):
    racer_h = factory.headers("racer")
    model = _upload_and_scan(models_app, client, racer_h, real_models[name])
    assert model["status"] == "available", model
