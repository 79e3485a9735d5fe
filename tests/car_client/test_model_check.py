"""Issue 18, the car's half: the car checks a model's graph again before loading it.

The two hostile models of the issue (built here with TensorFlow: a DeepRacer archive
whose ``model.pb`` holds a ``WriteFile`` op, a SavedModel zip that calls
``tf.io.write_file``) write a file when TensorFlow loads them; the car refuses both
before anything runs, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from car_client import model_check as car_check
from car_client.pilots import load_pilot
from car_client.pilots.deepracer import DeepRacerPilot
from car_client.pilots.guard import refuse_unsafe_model
from car_client.pilots.keras_runner import load_saved_model
from drem.models_mgr import inspect as server_inspect
from tests.car_client import model_factories as mf
from tests.models_mgr import factories as f

ROOT = Path(__file__).resolve().parents[2]


def _body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("from __future__ import annotations"):]


def test_server_and_car_check_with_the_same_code():
    """One allow-list for both ends: the server's inspection uses the car's check module."""
    assert server_inspect.graph_def_problems is refuse_unsafe_model.__globals__["graph_def_problems"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    return {
        "deepracer": mf.write_deepracer_model(d / "hostile.tar.gz", write_file_to=str(d / "dr-pwned")),
        "savedmodel": mf.hostile_savedmodel_zip(d / "hostile.zip", str(d / "sm-pwned")),
        "dr-target": d / "dr-pwned",
        "sm-target": d / "sm-pwned",
    }


def test_the_hostile_models_really_write_files_when_loaded_unchecked(tmp_path):
    """What the check stops: TensorFlow runs WriteFile while loading (the issue's finding)."""
    target = tmp_path / "written"
    DeepRacerPilot(mf.write_deepracer_model(tmp_path / "h.tar.gz", write_file_to=str(target)))
    assert target.read_bytes() == b"pwned"
    target.unlink()
    run, _sizes = load_saved_model(mf.hostile_savedmodel_zip(tmp_path / "h.zip", str(target)))
    run(np.zeros((1, 120, 160, 3), np.float32))  # load_pilot's first frame, before any race
    assert target.read_bytes() == b"pwned"


@pytest.mark.parametrize("fmt", ["deepracer", "savedmodel"])
@pytest.mark.parametrize("sandbox", [False, True])
def test_the_car_refuses_the_hostile_models_and_nothing_is_written(hostile, fmt, sandbox):
    with pytest.raises(ValueError, match=r"the car refuses hostile\.(tar\.gz|zip): it uses "
                                         r"the TensorFlow op 'WriteFile'"):
        load_pilot(hostile[fmt], sandbox=sandbox)
    assert not hostile["dr-target"].exists() and not hostile["sm-target"].exists()


def test_the_car_refuses_lambda_layers_and_flex_ops(tmp_path):
    model = mf.donkey_lambda()
    model.save(tmp_path / "lambda.keras")
    model.save(tmp_path / "lambda.h5")
    for name in ("lambda.keras", "lambda.h5"):
        with pytest.raises(ValueError, match=r"Lambda layer \('python_code'\), which runs Python"):
            refuse_unsafe_model(tmp_path / name, "keras")
    flex = f.tflite_file(tmp_path, "flex.tflite", op_codes=[f.TFLITE_CONV_2D, "FlexWriteFile"])
    with pytest.raises(ValueError, match="custom operator 'FlexWriteFile'"):
        load_pilot(flex, sandbox=False)
    with pytest.raises(ValueError, match="cannot read the graph"):
        refuse_unsafe_model(f.write_bytes(tmp_path, "x.keras", b"PK\x05\x06" + bytes(18)), "keras")


@pytest.mark.parametrize("key", ["discrete", "continuous", "sac", "flat"])
def test_real_deepracer_models_pass_the_car_check(deepracer_models, key):
    refuse_unsafe_model(deepracer_models[key], "deepracer")
    assert car_check.graph_def_problems(mf.deepracer_graph_bytes(5, network="shallow")) == []


@pytest.mark.parametrize("name, fmt", [("linear.keras", "keras"), ("linear.h5", "keras"),
                                       ("linear.tflite", "tflite"), ("linear.zip", "savedmodel"),
                                       ("categorical.keras", "keras"),
                                       ("categorical.tflite", "tflite")])
def test_real_donkey_models_pass_the_car_check(donkey_models, name, fmt):
    refuse_unsafe_model(donkey_models[name], fmt)
