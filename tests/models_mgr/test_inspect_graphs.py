"""Inspection checks every model's graph against the inference-op allow-list
(issue 18; ``car_client/model_check.py``): hostile graphs are refused with the op named."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from drem.models_mgr.inspect import inspect_model_file

from . import factories as f
from .factories import Entry
from .inspection import reject

# ------------------------------------------------------------ graph checks (issue 18)


def test_deepracer_graph_with_write_file_is_rejected_with_the_op_named(work: Path) -> None:
    path = f.deepracer_tar_gz(work, "hostile.tar.gz", pb=f.tiny_model_pb(extra_ops=["WriteFile"]))
    reason = reject(path)
    assert "agent/model.pb is not allowed on the cars" in reason
    assert "TensorFlow op 'WriteFile'" in reason and "node 'extra_0'" in reason


def test_deepracer_graph_function_library_is_checked(work: Path) -> None:
    graph = f.graph_with_library(
        f.tiny_model_pb() + f.call_node("run", "python_fn", op="PartitionedCall"),
        [f.function_def("python_fn", ["MatMul", "EagerPyFunc"])],
    )
    reason = reject(f.deepracer_tar_gz(work, "pyfunc.tar.gz", pb=graph))
    assert "'EagerPyFunc' (function 'python_fn'" in reason
    ghost = f.graph_with_library(f.tiny_model_pb() + f.call_node("run", "ghost"), [])
    assert "calls 'ghost', a function it does not define" in reject(
        f.deepracer_tar_gz(work, "ghost.tar.gz", pb=ghost))


def test_deepracer_graph_that_is_not_a_graph_def_is_rejected(work: Path) -> None:
    path = f.write_tar_gz(work / "garbage.tar.gz", [
        Entry("model_metadata.json", json.dumps(f.discrete_metadata()).encode()),
        Entry("agent/model.pb", b"\xff\x00garbage"),
    ])
    assert "is not a TensorFlow graph" in reject(path)


def _saver_graph(serve_calls: tuple[str, ...] = ()) -> bytes:
    """A SavedModel graph shaped like Keras's export: serving function, checkpoint
    save/restore functions reached from the saver's nodes."""
    nodes = (f.tiny_model_pb() + f.call_node("StatefulPartitionedCall", "serve")
             + f.call_node("StatefulPartitionedCall_2", "traced_save")
             + f.call_node("StatefulPartitionedCall_3", "traced_restore"))
    return f.graph_with_library(nodes, [
        f.function_def("serve", ["ReadVariableOp", "MatMul", "BiasAdd", "Tanh"], serve_calls),
        f.function_def("traced_save", ["StringJoin", "ShardedFilename", "SaveV2",
                                       "MergeV2Checkpoints"]),
        f.function_def("traced_restore", ["RestoreV2", "AssignVariableOp"]),
    ])


def test_savedmodel_checkpoint_functions_may_save_only_from_the_saver(work: Path) -> None:
    saver = ("StatefulPartitionedCall_2:0", "StatefulPartitionedCall_3")
    good = f.savedmodel_zip(work, "good.zip", pb=f.saved_model_pb(_saver_graph(), saver))
    assert inspect_model_file(good, "good.zip").format == "savedmodel"
    # the same save function, called from the serving function, writes files at run time
    bad = f.savedmodel_zip(work, "bad.zip",
                           pb=f.saved_model_pb(_saver_graph(("traced_save",)), saver))
    reason = reject(bad)
    assert "donkey/saved_model.pb is not allowed on the cars" in reason
    assert "'SaveV2' (function 'traced_save'" in reason
    # without a SaverDef nothing is a checkpoint function
    assert "'RestoreV2'" in reject(f.savedmodel_zip(work, "nosaver.zip",
                                                    pb=f.saved_model_pb(_saver_graph())))


def test_savedmodel_write_file_in_a_function_is_rejected(work: Path) -> None:
    graph = f.graph_with_library(f.tiny_model_pb() + f.call_node("call", "serve"),
                                 [f.function_def("serve", ["MatMul", "WriteFile"])])
    reason = reject(f.savedmodel_zip(work, "hostile.zip", pb=f.saved_model_pb(graph)))
    assert "'WriteFile' (function 'serve', node 'writefile_1')" in reason


def test_savedmodel_that_is_not_a_savedmodel_is_rejected(work: Path) -> None:
    assert "holds no meta graph" in reject(f.savedmodel_zip(work, "empty.zip", pb=b"\x08\x01"))
    assert "is not a TensorFlow SavedModel" in reject(
        f.savedmodel_zip(work, "garbage.zip", pb=b"\x12\xff\xff\xff\x0f"))


def _keras_config(layer: dict) -> bytes:
    return json.dumps({"module": "keras.src.models.functional", "class_name": "Functional",
                       "config": {"name": "m", "layers": [layer]}}).encode()


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
          "config": {"name": "code", "function": {"class_name": "__lambda__"}}},
         "Lambda layer ('code'), which runs Python code"),
        ({"module": "os", "class_name": "system", "config": {"name": "x"}},
         "Keras class 'system'"),
        ({"module": "builtins", "class_name": "Dense", "config": {"name": "d"}},
         "loads 'Dense' from the Python module 'builtins'"),
        ({"module": "keras.layers", "class_name": "Dense", "registered_name": "evil>Dense",
          "config": {"name": "d"}},
         "custom object 'evil>Dense'"),
        ({"module": "keras.layers", "class_name": "Dense",
          "config": {"name": "d", "activation": "my_activation"}},
         "activation 'my_activation'"),
    ],
)
def test_keras_configs_outside_the_allow_list_are_rejected(work: Path, layer, message) -> None:
    reason = reject(f.keras_zip(work, "bad.keras", config=_keras_config(layer)))
    assert "bad.keras is not allowed on the cars" in reason and message in reason


def test_keras_h5_with_a_lambda_layer_is_rejected(work: Path) -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Lambda", "config": {"name": "code", "function": ["4wEAAAAA", None, None]}},
    ]}}
    assert "Lambda layer ('code')" in reject(f.keras_h5(work, "lambda.h5", model_config=config))
    h5_without_config = f.keras_h5(work, "weights.h5")
    with h5py.File(h5_without_config, "a") as h5:
        del h5.attrs["model_config"]
    assert "holds weights only" in reject(h5_without_config)


def test_keras_compile_config_is_not_a_layer(work: Path) -> None:
    config = json.loads(_keras_config({"module": "keras.layers", "class_name": "Dense",
                                       "config": {"name": "d", "activation": "relu"}}))
    config["compile_config"] = {"optimizer": {"module": "keras.optimizers", "class_name": "Adam"}}
    path = f.keras_zip(work, "compiled.keras", config=json.dumps(config).encode())
    assert inspect_model_file(path, path.name).format == "keras"


def test_tflite_custom_and_flex_operators_are_rejected(work: Path) -> None:
    path = f.tflite_file(work, "flex.tflite", op_codes=[f.TFLITE_CONV_2D, "FlexWriteFile"])
    reason = reject(path)
    assert "flex.tflite is not allowed on the cars" in reason
    assert "custom operator 'FlexWriteFile'" in reason and "builtin TensorFlow Lite" in reason
    assert "custom operator" in reject(f.tflite_file(work, "custom.tflite", op_codes=["MyOp"]))


def test_tflite_with_a_damaged_operator_table_is_rejected(work: Path) -> None:
    data = bytearray(f.tflite_bytes())
    data[32:36] = b"\xff\xff\xff\x7f"  # the operator_codes vector offset points off the end
    path = f.write_bytes(work, "damaged.tflite", bytes(data))
    assert "damaged" in reject(path)
