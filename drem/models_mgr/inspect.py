"""Inspect an uploaded model file: which format, is it well formed, what does it need.

:func:`inspect_model_file` looks at the content (magic bytes) and the file name,
and accepts:

=============  ==========================================  ==================
format name    file                                        content check
=============  ==========================================  ==================
``deepracer``  ``.tar.gz`` / ``.tgz``                      gzip + tar, one ``agent/model.pb``
                                                           (or ``model.pb``), ``model_metadata.json``
                                                           at the top level
``keras``      ``.h5`` / ``.hdf5`` (Donkey Car)            HDF5 signature
``keras``      ``.keras``                                  zip with ``config.json`` and
                                                           ``metadata.json`` at the top level
``tflite``     ``.tflite``                                 flatbuffer identifier ``TFL3``
``savedmodel`` ``.zip``                                    zip with exactly one ``saved_model.pb``,
                                                           at the top or under one folder
=============  ==========================================  ==================

Archives are never extracted: members are read as streams straight from the
archive, so nothing is written to disk at all. Every decompressed byte is counted
while it streams (headers are not trusted), and inspection stops with
:class:`ModelRejected` as soon as a limit in :class:`InspectLimits` is crossed.
Rejected: absolute member names, ``..``, symbolic and hard links, device files,
FIFOs, duplicate names, too many members, decompression bombs (total size or
ratio), truncated or damaged archives, encrypted zip members, two ``model.pb``
files, missing or invalid ``model_metadata.json``, and DeepRacer sensors the cars
cannot run (stereo cameras, LiDAR). Each rejection carries a message for the racer.

A model is code too: its graph is checked against the ops real DeepRacer and Donkey
Car models use (:mod:`car_client.model_check`): every node and function of a DeepRacer
``model.pb`` and of a ``saved_model.pb``, every class of a Keras config (no ``Lambda``
layers, nothing from outside Keras), only builtin operators in a ``.tflite`` file.
Anything else is rejected with the op, class or operator named, so it ends
``invalid`` and never reaches a car (which checks again before loading).

The work is split by job: :mod:`.inspect_types` (result, limits, rejection),
:mod:`.archive_guard` (streaming archive reads, member checks, bomb guard),
:mod:`.metadata` (``model_metadata.json`` checks) and :mod:`car_client.model_check` (the op
allow-lists); this module identifies the format and checks each format's contents.
Import everything from here.

This module has no Flask imports and never runs the model.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import struct
import tarfile
import zipfile
import zlib
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from car_client.model_check import (
    graph_def_problems,
    keras_config_problems,
    saved_model_problems,
    tflite_problems,
)
from drem.models_mgr.archive_guard import (
    TAR_HEADER_SLACK,
    BombGuard,
    GuardedGunzip,
    member_name,
    read_limited,
    scan_zip,
)
from drem.models_mgr.donkey_settings import CONFIG_FILE_NAMES, parse_donkey_config
from drem.models_mgr.inspect_types import FORMATS, InspectLimits, ModelInfo, ModelRejected
from drem.models_mgr.metadata import SUPPORTED_SENSORS, load_json, parse_deepracer_metadata

__all__ = [
    "FORMATS",
    "SUPPORTED_SENSORS",
    "InspectLimits",
    "ModelInfo",
    "ModelRejected",
    "file_digests",
    "inspect_model_file",
    "parse_deepracer_metadata",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # HDF5 allows a user block before the superblock
_HEAD_BYTES = 4096
_READ_CHUNK = 1024 * 1024


def file_digests(path: str | PathLike[str]) -> tuple[int, str, str]:
    """Return ``(size_bytes, sha256_hex, md5_hex)`` of a file, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            size += len(chunk)
            sha.update(chunk)
            md5.update(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def _digest_stream(stream: BinaryIO) -> tuple[int, str, str]:
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        sha.update(chunk)
        md5.update(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def _refuse_graph(what: str, problems: list[str]) -> None:
    """Reject the model when the graph check found problems (sentences for the racer)."""
    if problems:
        raise ModelRejected(
            f"{what} is not allowed on the cars: " + "; ".join(problems)
            + ". Only the ops of real DeepRacer and Donkey Car models may run on a car."
        )


# --------------------------------------------------------------------- DeepRacer


_MODEL_PB_PLACES = ("agent/model.pb", "model.pb")


def _inspect_deepracer(path: Path, info: ModelInfo, limits: InspectLimits) -> None:
    guard = BombGuard(limits, info.size, info.filename)
    members: list[str] = []
    seen: set[str] = set()
    metadata_raw: bytes | None = None
    model_pbs: list[str] = []
    pb_digest: tuple[int, str, str] | None = None
    nested_metadata: list[str] = []
    try:
        with open(path, "rb") as fh:
            stream = GuardedGunzip(fh, guard)
            guard.budget_end = TAR_HEADER_SLACK
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for count, member in enumerate(tar, start=1):
                    # This member's data (in 512-byte blocks) and the next header
                    # may follow; anything more is a header that tarfile would
                    # otherwise buffer whole in memory.
                    guard.budget_end = guard.total + -(-member.size // 512) * 512 + TAR_HEADER_SLACK
                    if count > limits.max_members:
                        raise ModelRejected(
                            f"The archive has more than {limits.max_members} members; "
                            "a DeepRacer model has only a few files."
                        )
                    name = member_name(member.name)
                    shown = name or member.name
                    if member.issym():
                        raise ModelRejected(
                            f"The archive contains a symbolic link ({shown!r} -> {member.linkname!r}); "
                            "links are not allowed in model archives."
                        )
                    if member.islnk():
                        raise ModelRejected(
                            f"The archive contains a hard link ({shown!r} -> {member.linkname!r}); "
                            "links are not allowed in model archives."
                        )
                    if member.ischr() or member.isblk():
                        raise ModelRejected(
                            f"The archive contains a device file ({shown!r}); only files and folders are allowed."
                        )
                    if member.isfifo():
                        raise ModelRejected(
                            f"The archive contains a FIFO/pipe ({shown!r}); only files and folders are allowed."
                        )
                    if member.isdir():
                        if name:
                            members.append(name + "/")
                        continue
                    if not member.isreg() or member.issparse():
                        raise ModelRejected(
                            f"The archive contains {shown!r} of an unsupported type; "
                            "only files and folders are allowed."
                        )
                    if not name:
                        raise ModelRejected("The archive contains a file with an empty name.")
                    if name in seen:
                        raise ModelRejected(f"The archive contains {name!r} twice.")
                    seen.add(name)
                    members.append(name)
                    base = posixpath.basename(name)
                    if name == "model_metadata.json":
                        fobj = tar.extractfile(member)
                        assert fobj is not None
                        metadata_raw = read_limited(
                            fobj, limits.max_metadata_bytes, "model_metadata.json"
                        )
                    elif base == "model_metadata.json":
                        nested_metadata.append(name)
                    elif base == "model.pb":
                        model_pbs.append(name)
                        if len(model_pbs) > 1:
                            raise ModelRejected(
                                f"The archive contains more than one model.pb ({', '.join(model_pbs)}); "
                                "a DeepRacer model has exactly one, at agent/model.pb."
                            )
                        fobj = tar.extractfile(member)
                        assert fobj is not None
                        pb_digest = _digest_stream(fobj)
            guard.budget_end = None
            stream.drain()
    except ModelRejected:
        raise
    except EOFError as exc:
        raise ModelRejected(
            f"{info.filename} is truncated: the compressed data ends too early "
            "(was the upload or download cut off?)."
        ) from exc
    except (OSError, zlib.error, tarfile.TarError) as exc:
        raise ModelRejected(
            f"{info.filename} is not a readable .tar.gz archive ({type(exc).__name__}: {exc})."
        ) from exc

    info.members = members
    info.uncompressed_size = guard.total
    if not model_pbs:
        raise ModelRejected(
            "The archive has no agent/model.pb: a DeepRacer model holds its frozen graph there."
        )
    if model_pbs[0] not in _MODEL_PB_PLACES:
        raise ModelRejected(
            f"model.pb is at {model_pbs[0]!r}; a DeepRacer model has it at agent/model.pb."
        )
    assert pb_digest is not None
    if pb_digest[0] == 0:
        raise ModelRejected(f"{model_pbs[0]} is empty.")
    if metadata_raw is None:
        hint = f" (found {nested_metadata[0]!r} in a folder)" if nested_metadata else ""
        raise ModelRejected(
            f"The archive has no model_metadata.json at its top level{hint}; "
            "export the model from DeepRacer again, it includes this file."
        )
    parsed = parse_deepracer_metadata(metadata_raw)
    if pb_digest[0] > limits.max_graph_bytes:
        raise ModelRejected(
            f"{model_pbs[0]} is larger than {limits.max_graph_bytes // (1024 * 1024)} MB; "
            "real DeepRacer graphs are far smaller."
        )
    _refuse_graph(model_pbs[0], graph_def_problems(_read_tar_member(path, model_pbs[0], info, limits)))
    info.model_pb_path = model_pbs[0]
    info.model_pb_size, info.model_pb_sha256, info.model_pb_md5 = pb_digest
    info.metadata = parsed["metadata"]
    info.sensors = parsed["sensors"]
    info.action_space_type = parsed["action_space_type"]
    info.action_space = parsed["action_space"]
    info.neural_network = parsed["neural_network"]
    info.training_algorithm = parsed["training_algorithm"]
    info.version = parsed["version"]


def _read_tar_member(path: Path, name: str, info: ModelInfo, limits: InspectLimits) -> bytes:
    """Read one member of an archive the first pass already checked whole (so no bomb
    and no oversized member reaches here): a second streaming pass, nothing on disk."""
    guard = BombGuard(limits, info.size, info.filename)
    with open(path, "rb") as fh, tarfile.open(
        fileobj=GuardedGunzip(fh, guard), mode="r|"  # type: ignore[call-overload]
    ) as tar:
        for member in tar:
            if member.isreg() and member_name(member.name) == name:
                fobj = tar.extractfile(member)
                assert fobj is not None
                return read_limited(fobj, limits.max_graph_bytes, name)
    raise ModelRejected(f"{info.filename} changed while it was inspected.")


# ------------------------------------------------------------------------- zip


def _zip_kind(files: dict[str, zipfile.ZipInfo]) -> str | None:
    if any(posixpath.basename(n) == "saved_model.pb" for n in files):
        return "savedmodel"
    if "config.json" in files and "metadata.json" in files:
        return "keras"
    return None


def _inspect_keras_zip(
    zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], info: ModelInfo, limits: InspectLimits
) -> None:
    parsed: dict[str, Any] = {}
    for name in ("config.json", "metadata.json"):
        if name not in files:
            raise ModelRejected(
                f"The .keras file has no {name} at its top level; save the model with Keras 3."
            )
        with zf.open(files[name]) as fh:
            raw = read_limited(fh, limits.max_metadata_bytes, f"{name} in the .keras file")  # type: ignore[arg-type]
        value = load_json(raw, f"{name} in the .keras file")
        if not isinstance(value, dict):
            raise ModelRejected(f"{name} in the .keras file must be a JSON object.")
        parsed[name] = value
    keras_meta = parsed["metadata.json"]
    config = parsed["config.json"]
    _refuse_graph(info.filename, keras_config_problems(config))
    info.input_rows = keras_input_rows(config)
    info.version = str(keras_meta["keras_version"]) if "keras_version" in keras_meta else None
    info.metadata = {
        "metadata": keras_meta,
        "config_class": config.get("class_name"),
        "has_weights": any(n.endswith(".weights.h5") or n.endswith(".weights.npz") for n in files),
    }


def _inspect_savedmodel_zip(
    zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], info: ModelInfo, limits: InspectLimits
) -> None:
    pbs = sorted(n for n in files if posixpath.basename(n) == "saved_model.pb")
    if len(pbs) > 1:
        raise ModelRejected(
            f"The zip contains more than one saved_model.pb ({', '.join(pbs)}); upload one SavedModel per file."
        )
    if not pbs:
        raise ModelRejected("The zip contains no saved_model.pb; zip the SavedModel folder.")
    folder = posixpath.dirname(pbs[0])
    if folder.count("/") > 0:
        raise ModelRejected(
            f"saved_model.pb is nested too deep ({pbs[0]!r}); zip the SavedModel folder itself."
        )
    if files[pbs[0]].file_size == 0:
        raise ModelRejected("saved_model.pb is empty.")
    with zf.open(files[pbs[0]]) as fh:
        graph = read_limited(fh, limits.max_graph_bytes, "saved_model.pb")  # type: ignore[arg-type]
    _refuse_graph(pbs[0], saved_model_problems(graph))
    info.saved_model_dir = folder
    info.shipped_settings = _shipped_settings(zf, files, folder, limits)


def _shipped_settings(zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], folder: str,
                      limits: InspectLimits) -> dict[str, Any] | None:
    """Settings from a donkeycar config at the zip's top or beside ``saved_model.pb``."""
    for name in CONFIG_FILE_NAMES:
        for where in dict.fromkeys(["", folder]):
            member = posixpath.join(where, name) if where else name
            if member in files:
                with zf.open(files[member]) as fh:
                    raw = read_limited(fh, limits.max_metadata_bytes, member)  # type: ignore[arg-type]
                return parse_donkey_config(raw, member)
    return None


def keras_input_rows(config: Any) -> int | None:
    """The input height of a Keras model config (``config.json`` of a ``.keras`` file or
    an ``.h5`` file's ``model_config``): the ``batch_shape`` (Keras 3) or
    ``batch_input_shape`` (Keras 2) of its one ``InputLayer``, or its
    ``build_config.input_shape``. None when the config does not say (one free height,
    several inputs, not a 4-D image input)."""
    if not isinstance(config, dict):
        return None
    layers = (config.get("config") or {}).get("layers") if isinstance(config.get("config"), dict) else None
    shapes = []
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("class_name") == "InputLayer":
            cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
            shapes.append(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
    if not shapes:
        build = config.get("build_config")
        if isinstance(build, dict):
            shapes.append(build.get("input_shape"))
    if len(shapes) != 1 or not isinstance(shapes[0], list) or len(shapes[0]) != 4:
        return None
    rows = shapes[0][1]
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows > 0 else None


def _h5_model_config(path: Path, filename: str, limits: InspectLimits) -> Any:
    """The ``model_config`` JSON of a Keras ``.h5`` file, parsed."""
    try:
        import h5py  # only .h5 uploads need it; a server extra (see pyproject.toml)
    except ImportError as exc:
        raise ModelRejected(
            f"This server cannot check Keras .h5 files; save {filename} as .keras instead."
        ) from exc
    try:
        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("model_config")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelRejected(f"{filename} is not a readable Keras HDF5 model ({exc}).") from exc
    if raw is None:
        raise ModelRejected(
            f"{filename} holds weights only (no model_config); save the whole model."
        )
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) > limits.max_metadata_bytes:
        raise ModelRejected(f"{filename} has a model_config that is not a normal Keras config.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelRejected(f"{filename} has a model_config that is not valid JSON.") from exc


# ----------------------------------------------------------------------- entry point

_EXTENSIONS = {
    ".tar.gz": "gzip",
    ".tgz": "gzip",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".keras": "zip-keras",
    ".zip": "zip-savedmodel",
    ".tflite": "tflite",
}

_CONTENT_NAMES = {
    "gzip": "a gzip archive (DeepRacer .tar.gz)",
    "hdf5": "an HDF5 file (Keras .h5)",
    "zip": "a zip archive",
    "tflite": "a TensorFlow Lite model (.tflite)",
}


def _sniff(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    for off in _HDF5_OFFSETS:
        if head[off : off + 8] == _HDF5_SIGNATURE:
            return "hdf5"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    return None


def _expected_from_name(filename: str) -> tuple[str, str]:
    lower = filename.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return ext, _EXTENSIONS[ext]
    raise ModelRejected(
        f"{filename!r} is not a supported model file: upload a DeepRacer .tar.gz, a Keras "
        ".h5 or .keras file, a .tflite file, or a SavedModel folder as .zip."
    )


def inspect_model_file(
    path: str | PathLike[str],
    filename: str,
    limits: InspectLimits | None = None,
) -> ModelInfo:
    """Identify and check an uploaded model file without extracting or running it.

    Args:
        path: the file on local disk (for S3, use ``Storage.local_path``).
        filename: the name the racer uploaded (its extension must match the content).
        limits: archive limits; ``InspectLimits()`` when None.

    Returns:
        ModelInfo with the format, digests (SHA-256/MD5 of the file and, for
        DeepRacer, of model.pb) and the model's metadata.

    Raises:
        ModelRejected: the file is not an acceptable model; ``reason`` says why in
            words a racer understands.
        OSError: the file cannot be read.
    """
    limits = limits or InspectLimits()
    path = Path(path)
    ext, expected = _expected_from_name(filename)
    size, sha256, md5 = file_digests(path)
    if size == 0:
        raise ModelRejected(f"{filename} is empty.")
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    content = _sniff(head)
    expected_content = expected.split("-")[0]
    if content != expected_content:
        what = _CONTENT_NAMES.get(content or "", "not a recognised model format")
        raise ModelRejected(f"{filename} is named like a {ext} file but its content is {what}.")

    if content == "gzip":
        info = ModelInfo("deepracer", filename, size, sha256, md5, container="tar.gz")
        _inspect_deepracer(path, info, limits)
        return info
    if content == "hdf5":
        if size < 512:
            raise ModelRejected(f"{filename} is too small to be a Keras HDF5 model.")
        info = ModelInfo("keras", filename, size, sha256, md5, container="hdf5")
        h5_config = _h5_model_config(path, filename, limits)
        _refuse_graph(filename, keras_config_problems(h5_config))
        info.input_rows = keras_input_rows(h5_config)
        return info
    if content == "tflite":
        (root_offset,) = struct.unpack_from("<I", head, 0)
        if size < 16 or not 8 <= root_offset < size:
            raise ModelRejected(
                f"{filename} has a TensorFlow Lite identifier but is damaged (bad root offset)."
            )
        if size > limits.max_graph_bytes:
            raise ModelRejected(f"{filename} is larger than a TensorFlow Lite model can be here.")
        _refuse_graph(filename, tflite_problems(path.read_bytes()))
        return ModelInfo("tflite", filename, size, sha256, md5, container="flatbuffer")

    # zip: .keras or zipped SavedModel
    info = ModelInfo("keras", filename, size, sha256, md5, container="zip")
    zf, files = scan_zip(path, info, limits)
    with zf:
        kind = _zip_kind(files)
        if expected == "zip-keras":
            if kind != "keras":
                raise ModelRejected(
                    f"{filename} is not a Keras 3 .keras file: it needs config.json and "
                    "metadata.json at the top level."
                    + (
                        " It looks like a zipped SavedModel: name it .zip."
                        if kind == "savedmodel"
                        else ""
                    )
                )
            _inspect_keras_zip(zf, files, info, limits)
            return info
        if kind != "savedmodel":
            raise ModelRejected(
                f"{filename} contains no saved_model.pb; a .zip upload must be a zipped SavedModel folder."
                + (" It looks like a Keras 3 model: name it .keras." if kind == "keras" else "")
            )
        info.format = "savedmodel"
        _inspect_savedmodel_zip(zf, files, info, limits)
        return info
