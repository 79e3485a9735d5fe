"""Builders for model files used by the models_mgr tests, good and bad.

Every builder writes one file into a folder it is given and returns its path.
Large files (the gzip bombs) are produced by streaming: nothing of their
uncompressed size is ever held in memory.

Real DeepRacer models are over 4 MB; these are tiny files with the same layout
and the same tensor names (see DESIGN.md, "Model formats").
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from car_client.model_check import graph_def_problems

_MIB = 1024 * 1024

CAMERA_TENSOR = "main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
PPO_POLICY_TENSOR = "main_level/agent/main/online/network_1/ppo_head_0/policy"

# The EICAR anti-virus test string, assembled at run time so this source file is
# not itself flagged by a scanner on a developer's machine.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


# ------------------------------------------------------------------ tiny TF graph


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _node(name: str, op: str, inputs: Iterable[str] = (), attrs: bytes = b"") -> bytes:
    """GraphDef.node (field 1): NodeDef{name (1), op (2), input (3), attr (5)}."""
    body = _field_bytes(1, name.encode()) + _field_bytes(2, op.encode())
    for inp in inputs:
        body += _field_bytes(3, inp.encode())
    return _field_bytes(1, body + attrs)


def _const_attr(weights: bytes) -> bytes:
    """attr {"value": AttrValue{tensor: TensorProto{dtype DT_FLOAT, shape [n], tensor_content}}}."""
    weights += bytes(-len(weights) % 4)
    shape = _field_bytes(2, b"\x10" + _varint(len(weights) // 4))  # TensorShapeProto.dim.size
    tensor = b"\x08\x01" + _field_bytes(2, shape) + _field_bytes(4, weights)
    entry = _field_bytes(1, b"value") + _field_bytes(2, _field_bytes(8, tensor))
    return _field_bytes(5, entry)


def tiny_model_pb(weights: bytes = b"", extra_ops: Iterable[str] = ()) -> bytes:
    """A real (tiny) TensorFlow GraphDef protobuf with DeepRacer's tensor names.

    A Placeholder camera input and an Identity "policy" node reading it; ``weights``
    (bytes) become a float Const node, as the weights of a frozen graph are; each of
    ``extra_ops`` adds a node with that op (``"WriteFile"`` builds a hostile graph).
    """
    graph = _node(CAMERA_TENSOR, "Placeholder")
    if weights:
        graph += _node("main_level/agent/main/online/network_0/weights", "Const",
                       attrs=_const_attr(weights))
    for i, op in enumerate(extra_ops):
        graph += _node(f"extra_{i}", op)
    return graph + _node(PPO_POLICY_TENSOR, "Identity", [CAMERA_TENSOR])


def _is_graph_def(data: bytes) -> bool:
    return not any(p.startswith("model.pb is not a TensorFlow graph") for p in graph_def_problems(data))


# --------------------------------------------------------------- DeepRacer tar.gz


def discrete_metadata(**overrides: Any) -> dict[str, Any]:
    """model_metadata.json of a PPO model with a 4-action discrete space."""
    meta: dict[str, Any] = {
        "action_space": [
            {"steering_angle": -30.0, "speed": 0.8, "index": 0},
            {"steering_angle": 0.0, "speed": 1.5, "index": 1},
            {"steering_angle": 30.0, "speed": 0.8, "index": 2},
            {"steering_angle": 0.0, "speed": 2.5, "index": 3},
        ],
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }
    meta.update(overrides)
    return meta


def continuous_metadata(**overrides: Any) -> dict[str, Any]:
    """model_metadata.json of a SAC model with a continuous action space."""
    meta: dict[str, Any] = {
        "action_space": {
            "steering_angle": {"high": 30.0, "low": -30.0},
            "speed": {"high": 4.0, "low": 0.5},
        },
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "sac",
        "action_space_type": "continuous",
        "version": "5",
    }
    meta.update(overrides)
    return meta


@dataclass
class Entry:
    """One tar member. ``kind`` is a tarfile type; ``data`` for regular files."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""


def write_tar_gz(path: Path, entries: Iterable[Entry]) -> Path:
    """Write ``entries`` as a gzip-compressed tar at ``path`` (names used verbatim)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mtime = int(time.time())
            info.mode = 0o644
            if e.kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = e.linkname
                tar.addfile(info)
            elif e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:  # dirs, devices, fifos
                if e.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
    return path


def deepracer_entries(
    metadata: dict[str, Any] | bytes | None = None,
    pb_path: str = "agent/model.pb",
    pb: bytes | None = None,
) -> list[Entry]:
    """The members of a good DeepRacer export: metadata, agent/, agent/model.pb.

    ``pb``: the bytes of model.pb. Bytes that are not a GraphDef at all (random filler
    that makes a big, incompressible model) are carried as the weights of a real graph
    (:func:`tiny_model_pb`), so the model stays one the server accepts; a GraphDef
    (hostile or not) and empty bytes are used as they are."""
    if metadata is None:
        metadata = discrete_metadata()
    raw = metadata if isinstance(metadata, bytes) else json.dumps(metadata).encode()
    entries = [Entry("model_metadata.json", raw)]
    if "/" in pb_path:
        entries.append(Entry(pb_path.rsplit("/", 1)[0], kind=tarfile.DIRTYPE))
    if pb is None:
        pb = tiny_model_pb()
    elif pb and not _is_graph_def(pb):
        pb = tiny_model_pb(weights=pb)
    entries.append(Entry(pb_path, pb))
    return entries


def deepracer_tar_gz(folder: Path, name: str = "model.tar.gz", **kwargs: Any) -> Path:
    """A good DeepRacer model (see :func:`deepracer_entries` for the arguments)."""
    return write_tar_gz(folder / name, deepracer_entries(**kwargs))


def deepracer_with(folder: Path, name: str, extra: Iterable[Entry], **kwargs: Any) -> Path:
    """A DeepRacer model plus ``extra`` members appended after the good ones."""
    return write_tar_gz(folder / name, [*deepracer_entries(**kwargs), *extra])


def big_pax_header(folder: Path, size: int = 4 * _MIB) -> Path:
    """A good model whose model.pb carries a ``size``-byte pax header record
    (incompressible text), which tarfile would buffer whole in memory."""
    path = folder / "paxheader.tar.gz"
    comment = base64.b64encode(os.urandom(size * 3 // 4)).decode()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for e in deepracer_entries():
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.size = len(e.data)
            if e.name.endswith("model.pb"):
                info.pax_headers = {"comment": comment}
            tar.addfile(info, io.BytesIO(e.data) if e.kind == tarfile.REGTYPE else None)
    return path


def long_gnu_name(folder: Path, length: int = 2 * _MIB) -> Path:
    """A model plus a member whose GNU long name is ``length`` characters."""
    name = "agent/" + "".join(os.urandom(length // 2).hex())
    return deepracer_with(folder, "longname.tar.gz", [Entry(name, b"x")])


def without_metadata(folder: Path) -> Path:
    return write_tar_gz(
        folder / "nometa.tar.gz",
        [Entry("agent", kind=tarfile.DIRTYPE), Entry("agent/model.pb", tiny_model_pb())],
    )


def two_model_pb(folder: Path) -> Path:
    return deepracer_with(folder, "twopb.tar.gz", [Entry("model.pb", tiny_model_pb())])


def invalid_json_metadata(folder: Path) -> Path:
    return deepracer_tar_gz(folder, "badjson.tar.gz", metadata=b'{"action_space": [ {"speed": 1,')


def truncated_tar_gz(folder: Path, keep_fraction: float = 0.6) -> Path:
    """A good archive cut short (a cut-off upload). Padded with random pb data so
    the cut lands inside the compressed data."""
    good = deepracer_tar_gz(folder, "full.tar.gz", pb=os.urandom(64 * 1024))
    data = good.read_bytes()
    out = folder / "truncated.tar.gz"
    out.write_bytes(data[: int(len(data) * keep_fraction)])
    good.unlink()
    return out


def missing_gzip_trailer(folder: Path) -> Path:
    """A good archive minus the 8-byte gzip trailer: every tar member is complete,
    only the CRC and length are gone. Caught only if the stream is read to its end."""
    good = deepracer_tar_gz(folder, "full2.tar.gz")
    data = good.read_bytes()
    out = folder / "notrailer.tar.gz"
    out.write_bytes(data[:-8])
    good.unlink()
    return out


class ZeroStream(io.RawIOBase):
    """``size`` zero bytes, produced on demand (never all in memory)."""

    def __init__(self, size: int):
        super().__init__()
        self.left = size
        self.read_total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        memoryview(buffer)[:n] = bytes(n)
        self.left -= n
        self.read_total += n
        return n


def gzip_bomb_member(folder: Path, unpacked: int = 1024**3) -> Path:
    """A tar.gz whose agent/model.pb is ``unpacked`` bytes of zeros (1 GB default),
    compressed while streaming (single gzip member, level 1: about 4.5 MB)."""
    path = folder / "bomb.tar.gz"
    meta = json.dumps(discrete_metadata()).encode()
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                info = tarfile.TarInfo("model_metadata.json")
                info.size = len(meta)
                tar.addfile(info, io.BytesIO(meta))
                info = tarfile.TarInfo("agent/model.pb")
                info.size = unpacked
                tar.addfile(info, ZeroStream(unpacked))  # type: ignore[arg-type]
    return path


def gzip_bomb_after_tar(folder: Path, unpacked: int = 1024**3) -> Path:
    """A complete, small, valid DeepRacer tar followed *inside the gzip stream* by
    ``unpacked`` zero bytes. The tar headers are honest and tiny: only counting
    the bytes actually decompressed catches it. Written as a multi-member gzip
    (legal, and what ``cat a.gz b.gz`` gives), each member 1 MiB of zeros."""
    path = folder / "bomb-trailing.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for e in deepracer_entries():
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.size = len(e.data)
            tar.addfile(info, io.BytesIO(e.data) if e.kind == tarfile.REGTYPE else None)
    chunk = 1024 * 1024
    one_mib = gzip.compress(bytes(chunk), compresslevel=9, mtime=0)
    with open(path, "wb") as out:
        out.write(gzip.compress(buf.getvalue(), mtime=0))
        for _ in range(unpacked // chunk):
            out.write(one_mib)
    return path


# ------------------------------------------------------------------ Donkey formats


def keras_h5(folder: Path, name: str = "donkey.h5", model_config: Any = None) -> Path:
    """A real (tiny) HDF5 file shaped like a Keras 2 .h5 model (``model_config``: the
    config to store, a bare Functional model by default)."""
    import h5py
    import numpy as np

    path = folder / name
    if model_config is None:
        model_config = {"class_name": "Functional", "config": {"name": "donkey_linear"}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config)
        weights = f.create_group("model_weights/dense")
        weights.create_dataset("kernel:0", data=np.zeros((4, 2), dtype="float32"))
    return path


def keras_zip(
    folder: Path,
    name: str = "donkey.keras",
    config: bytes | None = None,
    metadata: bytes | None = None,
) -> Path:
    """A Keras 3 ``.keras`` archive: config.json, metadata.json, model.weights.h5."""
    path = folder / name
    if config is None:
        config = json.dumps(
            {"module": "keras", "class_name": "Functional", "config": {"name": "donkey"}}
        ).encode()
    if metadata is None:
        metadata = json.dumps(
            {"keras_version": "3.10.0", "date_saved": "2026-01-01@00:00:00"}
        ).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", metadata)
        zf.writestr("config.json", config)
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(1024))
    return path


#: TFLite builtin operator codes (schema.fbs BuiltinOperator).
TFLITE_CONV_2D, TFLITE_FULLY_CONNECTED, TFLITE_CUSTOM = 3, 9, 32


def tflite_bytes(op_codes: Iterable[int | str] = (TFLITE_CONV_2D, TFLITE_FULLY_CONNECTED)) -> bytes:
    """A TFLite flatbuffer (identifier ``TFL3``) whose Model table holds a version and an
    operator table: an int is a builtin operator code, a string a custom operator of
    that name (``"FlexWriteFile"`` is TensorFlow's WriteFile run through Flex)."""
    buf = bytearray(struct.pack("<I", 0) + b"TFL3")

    def here() -> int:
        return len(buf)

    # Model: vtable (fields 0 version, 1 operator_codes), then the table.
    model_vt = here()
    buf += struct.pack("<HHHH", 8, 12, 4, 8)
    model = here()
    buf += struct.pack("<iII", model - model_vt, 3, 0)
    struct.pack_into("<I", buf, 0, model)
    vector = here()
    struct.pack_into("<I", buf, model + 8, vector - (model + 8))
    codes = list(op_codes)
    buf += struct.pack("<I", len(codes)) + bytes(4 * len(codes))
    for i, code in enumerate(codes):
        custom = isinstance(code, str)
        builtin = TFLITE_CUSTOM if custom else int(code)
        vt = here()  # OperatorCode: 0 deprecated_builtin_code, 1 custom_code, 3 builtin_code
        buf += struct.pack("<HHHHHH", 12, 16, 4, 8 if custom else 0, 0, 12)
        table = here()
        buf += struct.pack("<ibxxxIi", table - vt, min(builtin, 127), 0, builtin)
        slot = vector + 4 + 4 * i
        struct.pack_into("<I", buf, slot, table - slot)
        if custom:
            text = code.encode()
            string = here()
            struct.pack_into("<I", buf, table + 8, string - (table + 8))
            buf += struct.pack("<I", len(text)) + text + b"\x00"
            buf += bytes(-len(buf) % 4)
    return bytes(buf)


def tflite_file(folder: Path, name: str = "donkey.tflite",
                op_codes: Iterable[int | str] = (TFLITE_CONV_2D, TFLITE_FULLY_CONNECTED)) -> Path:
    """A ``.tflite`` file of :func:`tflite_bytes` (builtin operators by default)."""
    path = folder / name
    path.write_bytes(tflite_bytes(op_codes))
    return path


def call_node(name: str, function: str, op: str = "StatefulPartitionedCall") -> bytes:
    """A node calling ``function`` through its ``f`` attribute (AttrValue.func, field 10)."""
    entry = _field_bytes(1, b"f") + _field_bytes(2, _field_bytes(10, _field_bytes(1, function.encode())))
    return _node(name, op, attrs=_field_bytes(5, entry))


def function_def(name: str, ops: Iterable[str], calls: Iterable[str] = ()) -> bytes:
    """A FunctionDef: signature (OpDef name, field 1) and one node per op (field 3),
    plus a call node per name in ``calls``."""
    body = _field_bytes(1, _field_bytes(1, name.encode()))
    for i, op in enumerate(ops):
        body += _field_bytes(3, _node(f"{op.lower()}_{i}", op)[2:])
    for i, callee in enumerate(calls):
        body += _field_bytes(3, call_node(f"call_{i}", callee)[2:])
    return body


def graph_with_library(nodes: bytes, functions: Iterable[bytes]) -> bytes:
    """A GraphDef of ``nodes`` (field 1 entries) and a function library (field 2)."""
    library = b"".join(_field_bytes(1, fn) for fn in functions)
    return nodes + _field_bytes(2, library)


def saved_model_pb(graph: bytes | None = None, saver: tuple[str, str] | None = None) -> bytes:
    """A SavedModel protobuf: schema version 1 (field 1) and one MetaGraphDef (field 2)
    whose graph_def (field 2) is ``graph`` (:func:`tiny_model_pb` by default);
    ``saver`` = (save tensor, restore op) names for its SaverDef (field 3)."""
    meta_graph = _field_bytes(2, tiny_model_pb() if graph is None else graph)
    if saver is not None:
        meta_graph += _field_bytes(3, _field_bytes(1, b"saver_filename:0")
                                   + _field_bytes(2, saver[0].encode())
                                   + _field_bytes(3, saver[1].encode()))
    return b"\x08\x01" + _field_bytes(2, meta_graph)


def savedmodel_zip(folder: Path, name: str = "donkey_savedmodel.zip", top: str = "donkey",
                   pb: bytes | None = None) -> Path:
    """A zipped SavedModel folder: ``<top>/saved_model.pb`` (``pb``, else
    :func:`saved_model_pb`) + ``variables/``."""
    path = folder / name
    prefix = f"{top}/" if top else ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if top:
            zf.writestr(zipfile.ZipInfo(prefix), b"")
        zf.writestr(prefix + "saved_model.pb", saved_model_pb() if pb is None else pb)
        zf.writestr(prefix + "fingerprint.pb", os.urandom(32))
        zf.writestr(prefix + "variables/variables.index", os.urandom(64))
        zf.writestr(prefix + "variables/variables.data-00000-of-00001", os.urandom(256))
    return path


def zip_with(
    folder: Path, name: str, members: Iterable[tuple[zipfile.ZipInfo | str, bytes]]
) -> Path:
    """A zip of the given (ZipInfo or name, data) pairs, deflated."""
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def zip_encrypted(folder: Path, name: str = "enc.zip") -> Path:
    """A zip whose member is flagged as encrypted (general purpose bit 0 set in the
    local and the central header; zipfile cannot write encrypted members)."""
    path = zip_with(folder, name, [("m/saved_model.pb", b"secret")])
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    path.write_bytes(bytes(data))
    return path


def write_bytes(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def zip_symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = 0o120777 << 16
    return info


def zip_zero_bomb(folder: Path, unpacked: int, name: str = "bomb.zip") -> Path:
    """A zipped SavedModel whose variables file is ``unpacked`` zero bytes, streamed."""
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("m/saved_model.pb", saved_model_pb())
        with zf.open("m/variables/variables.data-00000-of-00001", "w", force_zip64=True) as out:
            left = unpacked
            block = bytes(1024 * 1024)
            while left:
                n = min(left, len(block))
                out.write(block[:n])
                left -= n
    return path


class PatternStream(io.RawIOBase):
    """``size`` bytes generated on the fly from a 1 MiB random block (never held whole)."""

    block = os.urandom(_MIB)

    def __init__(self, size: int, on_read: Any = None):
        super().__init__()
        self.size = size
        self.pos = 0
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.on_read is not None:
            self.on_read(self.pos)
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        off = self.pos % _MIB
        n = min(n, _MIB - off)
        memoryview(buffer)[:n] = self.block[off : off + n]
        self.pos += n
        return n

    @classmethod
    def expected_digest(cls, size: int) -> str:
        sha = hashlib.sha256()
        left = size
        while left:
            n = min(left, _MIB)
            sha.update(cls.block[:n])
            left -= n
        return sha.hexdigest()


# ------------------------------------------------------------------------- EICAR


def eicar_file(folder: Path, name: str = "eicar.com") -> Path:
    path = folder / name
    path.write_bytes(EICAR)
    return path


def eicar_in_bigger_file(folder: Path) -> Path:
    path = folder / "big-with-eicar.bin"
    path.write_bytes(os.urandom(512 * 1024) + EICAR + os.urandom(512 * 1024))
    return path


def eicar_in_tar_gz(folder: Path) -> Path:
    """A DeepRacer-shaped model whose model.pb carries EICAR as weights (passes inspection)."""
    return deepracer_tar_gz(folder, "infected.tar.gz", pb=tiny_model_pb(weights=EICAR))


def eicar_in_zip(folder: Path) -> Path:
    return zip_with(folder, "infected.zip", [("m/saved_model.pb", EICAR)])


def random_file(folder: Path, size: int, name: str = "random.bin") -> Path:
    """``size`` bytes of random data written in 1 MiB chunks."""
    path = folder / name
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, 1024 * 1024)
            out.write(os.urandom(n))
            left -= n
    return path
