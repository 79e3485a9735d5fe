"""Donkey per-model settings on the server (issue 14): set at upload, read from a shipped
``myconfig.py`` (parsed, never run), inferred from / checked against the model's input
height, stored on the model and sent to the car in ``load_model``. Uploads go through the
real API, the real clamd and the real inspection (``tests/models_mgr/test_upload_flow.py``)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from drem.models_mgr.donkey_settings import parse_donkey_config, resolve_settings
from drem.models_mgr.inspect import ModelRejected, inspect_model_file, keras_input_rows
from drem.models_mgr.models import RacerModel
from drem.platform.extensions import db
from tests.fleet.conftest import Fleet, received
from tests.fleet.test_real_cars_fleet import online_car
from tests.models_mgr import factories as f
from tests.models_mgr.test_upload_flow import _model, _run_jobs, _upload


def _keras_config(rows: int | None) -> bytes:
    """config.json of a Keras 3 Functional model with one InputLayer of ``rows`` rows."""
    return json.dumps({"module": "keras", "class_name": "Functional", "config": {"name": "donkey", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "name": "img_in",
         "config": {"batch_shape": [None, rows, 160, 3], "dtype": "float32", "name": "img_in"}}]}}).encode()


def _savedmodel_with_config(folder: Path, config: str, where: str = "donkey/myconfig.py") -> Path:
    path = f.savedmodel_zip(folder, name="shipped.zip")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(where, config)
    return path


HOSTILE_CONFIG = '''
import os
os.system("touch {marker}")
open("{marker}", "w").write("ran")
# donkeycar myconfig.py
DRIVE_LOOP_HZ = 20
MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 0.5
MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 0.8   # the last assignment wins, as in Python
ROI_CROP_TOP = 40
ROI_CROP_BOTTOM: int = 0
if os.environ.get("X"):
    ROI_CROP_TOP = 10  # not a top-level assignment: not read
'''


def test_a_shipped_myconfig_is_parsed_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    settings = parse_donkey_config(HOSTILE_CONFIG.format(marker=marker).encode())
    assert settings == {"categorical_throttle_range": 0.8, "crop_top": 40, "crop_bottom": 0}
    assert not marker.exists()


@pytest.mark.parametrize("source,message", [
    ("ROI_CROP_TOP = int('40')", r"myconfig.py: ROI_CROP_TOP must be a plain number \(line 1\)"),
    ("MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 1.5", r"categorical_throttle_range must be a number in \(0, 1\]"),
    ("ROI_CROP_TOP = 70\nROI_CROP_BOTTOM = 50", r"crop_top \+ crop_bottom must be less than 120"),
    ("ROI_CROP_TOP = 40 +", r"not a readable Python config"),
])
def test_a_bad_shipped_config_is_refused_with_its_reason(source, message):
    with pytest.raises(ModelRejected, match=message):
        parse_donkey_config(source.encode())


def test_resolve_prefers_the_racer_then_the_config_then_the_input_height():
    assert resolve_settings({"crop_top": 30}, {"crop_top": 40, "crop_bottom": 0}, 80) == \
        {"crop_top": 30, "crop_bottom": 10}
    assert resolve_settings(None, None, 80) == {"crop_top": 40, "crop_bottom": 0}
    assert resolve_settings({"categorical_throttle_range": 0.8}, None, 120) == {"categorical_throttle_range": 0.8}
    assert resolve_settings(None, {"crop_top": 40}, None) == {"crop_top": 40}  # the car checks it
    with pytest.raises(ModelRejected, match=r"The crop \(top 30, bottom 0 rows\) does not match the model: its "
                                            r"input is 80 rows high, so top \+ bottom must be 40"):
        resolve_settings({"crop_top": 30, "crop_bottom": 0}, None, 80)
    with pytest.raises(ModelRejected, match="does not match the model: its input is 120 rows high"):
        resolve_settings(None, {"crop_top": 40}, 120)


def test_the_input_height_is_read_from_real_keras_files(tmp_path):
    from tests.car_client import model_factories as mf

    model = mf.donkey_linear(seed=5, input_shape=(80, 160, 3))
    model.save(tmp_path / "crop.keras")
    model.save(tmp_path / "crop.h5")
    assert inspect_model_file(tmp_path / "crop.keras", "crop.keras").input_rows == 80
    assert inspect_model_file(tmp_path / "crop.h5", "crop.h5").input_rows == 80
    assert keras_input_rows({"class_name": "Functional", "config": {"layers": []}}) is None
    assert keras_input_rows({"build_config": {"input_shape": [None, 100, 160, 3]}}) == 100


def test_racer_settings_at_upload_are_stored_and_shown(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    path = f.keras_zip(tmp_path, name="cropped.keras", config=_keras_config(80))
    resp = _upload(client, racer_h, path, categorical_throttle_range="0.8", crop_top="40", crop_bottom="0")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["model_settings"] == {"categorical_throttle_range": 0.8, "crop_top": 40,
                                                 "crop_bottom": 0}
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "available", model
    assert model["model_settings"] == {"categorical_throttle_range": 0.8, "crop_top": 40, "crop_bottom": 0}
    page = client.get("/models/", headers=racer_h).get_data(as_text=True)
    assert "throttle range 0.8" in page and "crop 40 top / 0 bottom" in page


def test_the_crop_is_inferred_from_the_input_height(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    resp = _upload(client, racer_h, f.keras_zip(tmp_path, name="c.keras", config=_keras_config(90)))
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "available" and model["model_settings"] == {"crop_top": 30, "crop_bottom": 0}


def test_a_crop_that_does_not_match_the_input_makes_the_model_invalid(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    path = f.keras_zip(tmp_path, name="wrong.keras", config=_keras_config(80))
    resp = _upload(client, racer_h, path, crop_top="30", crop_bottom="0")
    assert resp.status_code == 201
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "invalid", model
    assert model["status_reason"] == ("The crop (top 30, bottom 0 rows) does not match the model: its input is "
                                      "80 rows high, so top + bottom must be 40 (120 - 80).")


def test_a_myconfig_in_the_zip_is_read_without_running_it(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    marker = tmp_path / "pwned"
    path = _savedmodel_with_config(tmp_path, HOSTILE_CONFIG.format(marker=marker))
    resp = _upload(client, racer_h, path)
    assert resp.status_code == 201
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "available", model
    assert model["model_settings"] == {"categorical_throttle_range": 0.8, "crop_top": 40, "crop_bottom": 0}
    assert not marker.exists()
    # the racer's field wins over the shipped config
    resp = _upload(client, racer_h, _savedmodel_with_config(tmp_path, "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 0.8\n",
                                                            where="config.py"),
                   categorical_throttle_range="0.6")
    _run_jobs(models_app)
    assert _model(client, racer_h, resp.get_json()["id"])["model_settings"] == {"categorical_throttle_range": 0.6}


def test_a_bad_shipped_config_makes_the_model_invalid(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    resp = _upload(client, racer_h, _savedmodel_with_config(tmp_path, "ROI_CROP_TOP = -5\n"))
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "invalid"
    assert model["status_reason"] == "donkey/myconfig.py: crop_top must be a whole number of rows 0..119, got -5."


@pytest.mark.parametrize("params,field,message", [
    ({"categorical_throttle_range": "fast"}, "categorical_throttle_range",
     "categorical_throttle_range must be a number, e.g. 0.8"),
    ({"categorical_throttle_range": "0"}, "categorical_throttle_range",
     "categorical_throttle_range must be above 0 and at most 1, got 0"),
    ({"categorical_throttle_range": "1.2"}, "categorical_throttle_range",
     "categorical_throttle_range must be above 0 and at most 1, got 1.2"),
    ({"crop_top": "-1"}, "crop_top", "crop_top must be between 0 and 119, got -1"),
    ({"crop_bottom": "12.5"}, "crop_bottom", "crop_bottom must be a whole number"),
    ({"crop_top": "60", "crop_bottom": "60"}, "crop_bottom",
     "crop_top + crop_bottom must be less than 120 (the camera's rows)"),
])
def test_bad_values_are_refused_at_upload_and_nothing_is_kept(models_app, client, factory, tmp_path,
                                                               params, field, message):
    racer_h = factory.headers("racer")
    resp = _upload(client, racer_h, f.keras_zip(tmp_path), **params)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == message and resp.get_json()["field"] == field
    assert client.get("/api/models", headers=racer_h).get_json()["total"] == 0
    assert not list((tmp_path / "storage").rglob("*.keras"))


def test_settings_on_a_deepracer_upload_are_refused(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    resp = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path), crop_top="40")
    assert resp.status_code == 400 and "Donkey Car settings" in resp.get_json()["error"]


def test_multipart_upload_takes_the_settings_as_form_fields(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    path = f.keras_zip(tmp_path)
    resp = client.post("/api/models", headers=racer_h, content_type="multipart/form-data",
                       data={"file": (path.open("rb"), "m.keras"), "categorical_throttle_range": "0.75"})
    assert resp.status_code == 201 and resp.get_json()["model_settings"] == {"categorical_throttle_range": 0.75}


def test_load_model_carries_the_settings_to_the_car(app, client, factory):
    fleet = Fleet(app, client, factory)
    car, sio = online_car(fleet, "donkey-01", ["keras", "tflite", "savedmodel"])
    model = fleet.model(filename="pilot.keras")
    with app.app_context():
        row = db.session.get(RacerModel, model["id"])
        row.model_format, row.model_settings = "keras", {"categorical_throttle_range": 0.8, "crop_top": 40,
                                                         "crop_bottom": 0}
        db.session.commit()
    resp = fleet.command([car["car_id"]], "load_model", {"model_id": model["id"]})
    assert resp.status_code in (200, 201), resp.get_json()
    (command,) = received(sio, "command", "/car")
    assert command["params"]["model_settings"] == {"categorical_throttle_range": 0.8, "crop_top": 40,
                                                   "crop_bottom": 0}
    sio.disconnect("/car")
