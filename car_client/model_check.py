"""Check a driving model's graph against the ops real DeepRacer and Donkey Car models use.

A model is code as much as data: a TensorFlow graph may hold ``WriteFile``, ``PyFunc``
or any other op, and loading it runs them. Before a model is loaded, every op it can
run is compared with an allow-list of inference ops, and anything else refuses it
with the op named. Pure Python (no TensorFlow): the protobuf and flatbuffer bytes are
read here, field by field, with every offset bounds-checked.

* DeepRacer ``model.pb`` (a frozen ``GraphDef``): every node of the graph and of its
  function library must use an op in :data:`INFERENCE_OPS`.
* SavedModel ``saved_model.pb``: every node of every meta graph and every function of
  its library, against :data:`INFERENCE_OPS`; the functions that only the SaverDef's
  save and restore nodes reach (``__inference__traced_save_*`` / ``_traced_restore_*``,
  which ``tf.saved_model.load`` never runs) may also use :data:`CHECKPOINT_OPS`.
* Keras ``config.json`` (``.keras``) / ``model_config`` (``.h5``): every object's
  ``class_name`` must be in :data:`KERAS_CLASSES` from a ``keras`` module, with no
  registered custom name; a ``Lambda`` layer (Python code) is refused, and so is an
  activation outside :data:`KERAS_ACTIVATIONS`. ``compile_config`` is not read: the
  car loads models with ``compile=False``.
* ``.tflite``: builtin operators only; a custom operator (``Flex*`` ops included) is
  refused with its name.

Each function returns a list of problems (sentences for a racer; empty = accepted).
One module for both ends: the car checks before loading (``car_client.pilots.guard``)
and the server at upload (``drem.models_mgr.inspect``). Standard library only, so the
server imports it without the car's packages; with ``car_client.protocol`` and
``car_client.confine`` it is one of the three car_client modules drem may import (the
import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CHECKPOINT_OPS",
    "INFERENCE_OPS",
    "KERAS_ACTIVATIONS",
    "KERAS_CLASSES",
    "graph_def_problems",
    "keras_config_problems",
    "saved_model_problems",
    "tflite_problems",
]

#: TensorFlow ops a DeepRacer or Donkey Car model needs for inference: tensor maths,
#: convolutions and pooling, shapes, activations, reads of its own variables, calls of
#: its own functions, random sampling heads. Nothing that touches files, runs Python,
#: prints, or talks to the outside.
INFERENCE_OPS = frozenset({
    # plumbing
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault",
    "PreventGradient", "Snapshot", "StopGradient", "CheckNumerics",
    # arithmetic and reductions
    "Abs", "Add", "AddN", "AddV2", "ArgMax", "ArgMin", "BatchMatMul", "BatchMatMulV2",
    "BatchMatMulV3", "BiasAdd", "Ceil", "ClipByValue", "Cumsum", "Div", "DivNoNan", "Erf",
    "Exp", "Floor", "FloorDiv", "FloorMod", "Log", "Log1p", "MatMul", "Max", "Maximum",
    "Mean", "Min", "Minimum", "Mul", "Neg", "Pow", "Prod", "RealDiv", "Reciprocal", "Round",
    "Rsqrt", "Sign", "Sqrt", "Square", "SquaredDifference", "Sub", "Sum",
    # activations
    "Elu", "LeakyRelu", "LogSoftmax", "Relu", "Relu6", "Selu", "Sigmoid", "Softmax",
    "Softplus", "Softsign", "Tanh",
    # convolutions, pooling, normalisation, resizing
    "AvgPool", "Conv2D", "DepthwiseConv2dNative", "FusedBatchNorm", "FusedBatchNormV2",
    "FusedBatchNormV3", "LRN", "MaxPool", "MaxPoolV2", "ResizeBilinear",
    "ResizeNearestNeighbor",
    # shapes and indexing
    "BroadcastArgs", "BroadcastTo", "Cast", "Concat", "ConcatV2", "ExpandDims", "Fill",
    "Gather", "GatherV2", "MirrorPad", "OneHot", "OnesLike", "Pack", "Pad", "PadV2", "Range",
    "Rank", "Reshape", "Shape", "ShapeN", "Size", "Slice", "Split", "SplitV", "Squeeze",
    "StridedSlice", "Tile", "Transpose", "Unpack", "ZerosLike",
    # comparisons and selection
    "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalNot",
    "LogicalOr", "NotEqual", "Select", "SelectV2",
    # sampling heads (SAC, stochastic policies)
    "Multinomial", "RandomStandardNormal", "RandomUniform", "TruncatedNormal",
    # a SavedModel's own variables, held in memory
    "AssignVariableOp", "ReadVariableOp", "VarHandleOp", "VarIsInitializedOp",
    # calls of the model's own functions (each callee is checked too) and tf.cond
    "If", "Merge", "PartitionedCall", "StatefulPartitionedCall", "StatelessIf", "Switch",
})

#: Ops of a SavedModel's checkpoint functions (the SaverDef's save and restore).
CHECKPOINT_OPS = frozenset({
    "DisableCopyOnRead", "MergeV2Checkpoints", "RestoreV2", "SaveV2", "ShardedFilename",
    "StaticRegexFullMatch", "StringJoin",
})

#: Keras classes a Donkey Car model is built from: layers, models, dtype policies,
#: initialisers, regularisers and constraints (all built into Keras).
KERAS_CLASSES = frozenset({
    "Functional", "Model", "Sequential", "__keras_tensor__", "__tuple__",
    "Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization", "Concatenate",
    "Conv2D", "Conv2DTranspose", "Cropping2D", "Dense", "DepthwiseConv2D", "Dropout", "ELU",
    "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Identity", "InputLayer",
    "LayerNormalization", "LeakyReLU", "MaxPooling2D", "Maximum", "Minimum", "Multiply",
    "Permute", "ReLU", "Rescaling", "Reshape", "SeparableConv2D", "Softmax",
    "SpatialDropout2D", "Subtract", "ZeroPadding2D",
    "DTypePolicy", "FloatDTypePolicy",
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal",
    "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "Zeros",
    "L1", "L1L2", "L2", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm",
})

#: Activation functions a layer may name.
KERAS_ACTIVATIONS = frozenset({
    "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu",
    "linear", "log_softmax", "relu", "relu6", "selu", "sigmoid", "silu", "softmax",
    "softplus", "softsign", "swish", "tanh",
})

_MAX_PROBLEMS = 5
_MAX_DEPTH = 64


class _Malformed(Exception):
    """The bytes are not the protobuf/flatbuffer they claim to be."""


# ------------------------------------------------------------ protobuf wire format


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed("a number runs past its field")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field number, wire type, value)`` of one message: an int for varints,
    a ``(start, end)`` span for length-delimited fields, None for fixed-size ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Malformed("a field runs past its message")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise _Malformed("a fixed-size field runs past its message")
            yield number, wire, None
        else:
            raise _Malformed(f"wire type {wire}")


def _spans(buf: bytes, span: tuple[int, int], number: int) -> Iterator[tuple[int, int]]:
    for n, wire, value in _fields(buf, *span):
        if n == number:
            if wire != 2:
                raise _Malformed(f"field {number} is not a message or string")
            yield value


def _text(buf: bytes, span: tuple[int, int]) -> str:
    return buf[span[0]:span[1]].decode("utf-8", "replace")


class _Node:
    """One NodeDef: its name, every op it names, every function its attributes name."""

    __slots__ = ("funcs", "name", "ops")

    def __init__(self, buf: bytes, span: tuple[int, int]) -> None:
        self.name = ""
        self.ops: list[str] = []
        self.funcs: set[str] = set()
        for n, wire, value in _fields(buf, *span):
            if wire != 2:
                continue
            if n == 1:
                self.name = _text(buf, value)
            elif n == 2:  # every op value counts, not only the last
                self.ops.append(_text(buf, value))
            elif n == 5:  # attr map entry: key (1), AttrValue (2)
                for attr in _spans(buf, value, 2):
                    _attr_funcs(buf, attr, self.funcs, 0)
        if not self.ops:
            self.ops.append("")


def _attr_funcs(buf: bytes, span: tuple[int, int], out: set[str], depth: int) -> None:
    """Collect function names an AttrValue refers to (``func``, ``list.func``, nested)."""
    if depth > _MAX_DEPTH:
        raise _Malformed("attributes nested too deeply")
    for n, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if n == 10:  # func: NameAttrList
            _name_attr_list(buf, value, out, depth + 1)
        elif n == 1:  # list: ListValue, func = 9
            for func in _spans(buf, value, 9):
                _name_attr_list(buf, func, out, depth + 1)


def _name_attr_list(buf: bytes, span: tuple[int, int], out: set[str], depth: int) -> None:
    for n, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if n == 1:
            out.add(_text(buf, value))
        elif n == 2:
            for attr in _spans(buf, value, 2):
                _attr_funcs(buf, attr, out, depth + 1)


def _graph(buf: bytes, span: tuple[int, int]) -> tuple[list[_Node], dict[str, list[_Node]]]:
    """A GraphDef: its nodes (field 1) and its library's functions (2 -> 1)."""
    nodes: list[_Node] = []
    functions: dict[str, list[_Node]] = {}
    for n, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if n == 1:
            nodes.append(_Node(buf, value))
        elif n == 2:
            for fdef in _spans(buf, value, 1):
                name, body = "", []
                for fn, fwire, fvalue in _fields(buf, *fdef):
                    if fwire != 2:
                        continue
                    if fn == 1:  # signature: OpDef, name = 1
                        for sig in _spans(buf, fvalue, 1):
                            name = _text(buf, sig)
                    elif fn == 3:
                        body.append(_Node(buf, fvalue))
                if name in functions:
                    raise _Malformed(f"function {name!r} is defined twice")
                functions[name] = body
    return nodes, functions


# ------------------------------------------------------------------ the checks


def _refs(nodes: list[_Node], functions: dict[str, list[_Node]]) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        out |= node.funcs
        out.update(op for op in node.ops if op in functions)
    return out


def _reach(roots: set[str], functions: dict[str, list[_Node]]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in functions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(functions[name], functions) if r in functions)
    return seen


def _op_problems(where: str, nodes: list[_Node], functions: dict[str, list[_Node]],
                 allowed: frozenset[str], found: dict[str, str]) -> None:
    for node in nodes:
        for op in node.ops:
            if op not in allowed and op not in functions and op not in found:
                found[op] = f"{where}, node {node.name!r}"
        for ref in node.funcs:
            if ref not in functions and f"function {ref}" not in found:
                found[f"function {ref}"] = f"{where}, node {node.name!r}"


def _describe(found: dict[str, str]) -> list[str]:
    problems = []
    for op, where in list(found.items())[:_MAX_PROBLEMS]:
        if op.startswith("function "):
            problems.append(f"the graph calls {op[9:]!r}, a function it does not define ({where})")
        elif not op:
            problems.append(f"a node has no op ({where})")
        else:
            problems.append(f"it uses the TensorFlow op {op!r} ({where}), which is not an "
                            "inference op of DeepRacer or Donkey Car models")
    if len(found) > _MAX_PROBLEMS:
        problems.append(f"and {len(found) - _MAX_PROBLEMS} more ops that are not allowed")
    return problems


def graph_def_problems(data: bytes) -> list[str]:
    """Problems of a serialized frozen ``GraphDef`` (DeepRacer ``model.pb``): ops
    outside :data:`INFERENCE_OPS` in its nodes or functions, calls of undefined
    functions, or bytes that are not a GraphDef. Empty list = accepted."""
    try:
        nodes, functions = _graph(data, (0, len(data)))
    except _Malformed as exc:
        return [f"model.pb is not a TensorFlow graph ({exc})"]
    if not nodes:
        return ["model.pb holds no graph nodes"]
    found: dict[str, str] = {}
    _op_problems("graph", nodes, functions, INFERENCE_OPS, found)
    for name, body in functions.items():
        _op_problems(f"function {name!r}", body, functions, INFERENCE_OPS, found)
    return _describe(found)


def _tensor_node(name: str) -> str:
    return name.lstrip("^").split(":", 1)[0]


def saved_model_problems(data: bytes) -> list[str]:
    """Problems of a serialized ``SavedModel`` (``saved_model.pb``): every meta graph's
    nodes and library functions against :data:`INFERENCE_OPS`; functions reached only
    from the SaverDef's save/restore nodes may also use :data:`CHECKPOINT_OPS`.
    Empty list = accepted."""
    found: dict[str, str] = {}
    try:
        metas = list(_spans(data, (0, len(data)), 2))
        if not metas:
            return ["saved_model.pb holds no meta graph"]
        for meta in metas:
            graph_span = None
            saver_nodes: set[str] = set()
            for n, wire, value in _fields(data, *meta):
                if wire != 2:
                    continue
                if n == 2:
                    if graph_span is not None:
                        raise _Malformed("a meta graph with two graphs")
                    graph_span = value
                elif n == 3:  # SaverDef: save_tensor_name (2), restore_op_name (3)
                    for sn, swire, svalue in _fields(data, *value):
                        if swire == 2 and sn in (2, 3):
                            saver_nodes.add(_tensor_node(_text(data, svalue)))
            if graph_span is None:
                return ["saved_model.pb has a meta graph without a graph"]
            nodes, functions = _graph(data, graph_span)
            saver = [nd for nd in nodes if nd.name in saver_nodes]
            others = [nd for nd in nodes if nd.name not in saver_nodes]
            checkpoint = _reach(_refs(saver, functions), functions)
            entries = _refs(others, functions) | (set(functions) - checkpoint)
            inference = _reach(entries, functions)
            _op_problems("graph", nodes, functions, INFERENCE_OPS, found)
            for name, body in functions.items():
                allowed = INFERENCE_OPS
                if name in checkpoint and name not in inference:
                    allowed = INFERENCE_OPS | CHECKPOINT_OPS
                _op_problems(f"function {name!r}", body, functions, allowed, found)
    except _Malformed as exc:
        return [f"saved_model.pb is not a TensorFlow SavedModel ({exc})"]
    return _describe(found)


def keras_config_problems(config: Any) -> list[str]:
    """Problems of a Keras model config (parsed ``config.json`` / ``model_config``):
    classes outside :data:`KERAS_CLASSES`, ``Lambda`` layers, objects from modules
    other than Keras or registered under a custom name, unknown activations.
    Empty list = accepted."""
    problems: list[str] = []
    if not isinstance(config, dict) or "class_name" not in config:
        return ["the Keras model config is not a model (no class_name)"]
    _walk_keras(config, problems, 0)
    return list(dict.fromkeys(problems))[:_MAX_PROBLEMS]


def _walk_keras(value: Any, problems: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        problems.append("the Keras model config is nested too deeply")
        return
    if isinstance(value, list):
        for item in value:
            _walk_keras(item, problems, depth + 1)
        return
    if not isinstance(value, dict):
        return
    cls = value.get("class_name")
    if cls is not None:
        cfg = value.get("config")
        name = value.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
        label = f" ({name!r})" if isinstance(name, str) else ""
        module = value.get("module")
        registered = value.get("registered_name")
        if cls == "Lambda":
            problems.append(f"it has a Lambda layer{label}, which runs Python code on the car")
        elif cls == "function" and module == "keras.activations":
            if value.get("config") not in KERAS_ACTIVATIONS:
                problems.append(f"it uses the activation {value.get('config')!r}, which is not "
                                "a Keras activation")
            return
        elif not isinstance(cls, str) or cls not in KERAS_CLASSES:
            problems.append(f"it uses the Keras class {cls!r}{label}, which is not a built-in "
                            "inference layer")
        if module is not None and not (isinstance(module, str) and
                                       (module == "keras" or module.startswith("keras."))):
            problems.append(f"it loads {cls!r} from the Python module {module!r}, not from Keras")
        if registered is not None and registered != cls:
            problems.append(f"it uses the custom object {registered!r}, which is not part of "
                            "Keras")
    for key, item in value.items():
        if key in ("compile_config", "training_config"):
            continue  # the car loads models with compile=False
        if key in ("activation", "recurrent_activation") and isinstance(item, str):
            if item not in KERAS_ACTIVATIONS:
                problems.append(f"it uses the activation {item!r}, which is not a Keras "
                                "activation")
            continue
        _walk_keras(item, problems, depth + 1)


# ------------------------------------------------------------------------ tflite

_TFLITE_CUSTOM = 32
_TFLITE_PLACEHOLDER = 127


class _Flat:
    """Bounds-checked reads of a flatbuffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise _Malformed("an offset points outside the file")
        return struct.unpack_from("<I", self.data, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Position of field ``index`` of the table at ``table``; None when absent."""
        if table < 0 or table + 4 > len(self.data):
            raise _Malformed("a table is outside the file")
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        if vtable < 0 or vtable + 4 > len(self.data):
            raise _Malformed("a table's vtable is outside the file")
        vt_len = struct.unpack_from("<H", self.data, vtable)[0]
        slot = 4 + 2 * index
        if slot + 2 > vt_len or vtable + slot + 2 > len(self.data):
            return None
        off = struct.unpack_from("<H", self.data, vtable + slot)[0]
        return table + off if off else None

    def vector(self, pos: int) -> tuple[int, int]:
        start = pos + self.u32(pos)
        count = self.u32(start)
        if start + 4 + 4 * count > len(self.data):
            raise _Malformed("a vector runs past the end of the file")
        return start + 4, count

    def string(self, pos: int) -> str:
        start = pos + self.u32(pos)
        length = self.u32(start)
        if start + 4 + length > len(self.data):
            raise _Malformed("a string runs past the end of the file")
        return self.data[start + 4:start + 4 + length].decode("utf-8", "replace")

    def scalar(self, table: int, index: int, fmt: str, default: int = 0) -> int:
        pos = self.field(table, index)
        if pos is None:
            return default
        if pos + struct.calcsize(fmt) > len(self.data):
            raise _Malformed("a field runs past the end of the file")
        return struct.unpack_from(fmt, self.data, pos)[0]


def tflite_problems(data: bytes) -> list[str]:
    """Problems of a ``.tflite`` flatbuffer: custom operators (``Flex*`` TensorFlow ops
    included) or a damaged operator table. Builtin operators are accepted.
    Empty list = accepted."""
    flat = _Flat(data)
    problems: list[str] = []
    try:
        model = flat.u32(0)
        codes_at = flat.field(model, 1)  # Model.operator_codes
        if codes_at is None:
            return ["the .tflite model has no operator table"]
        start, count = flat.vector(codes_at)
        for i in range(count):
            code = start + 4 * i + flat.u32(start + 4 * i)
            deprecated = flat.scalar(code, 0, "<b")
            builtin = max(deprecated, flat.scalar(code, 3, "<i"))
            custom_at = flat.field(code, 1)
            custom = flat.string(custom_at) if custom_at is not None else ""
            if builtin == _TFLITE_CUSTOM or custom or (
                    deprecated == _TFLITE_PLACEHOLDER and builtin == _TFLITE_PLACEHOLDER):
                problems.append(f"it uses the custom operator {custom or '(unnamed)'!r}; the "
                                "car runs builtin TensorFlow Lite operators only")
    except _Malformed as exc:
        return [f"the .tflite model is damaged ({exc})"]
    return list(dict.fromkeys(problems))[:_MAX_PROBLEMS]
