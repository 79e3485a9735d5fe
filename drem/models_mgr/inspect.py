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

This module has no Flask imports and never runs the model.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import posixpath
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

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

#: Format names stored on the model record.
FORMATS = ("deepracer", "keras", "tflite", "savedmodel")

#: DeepRacer sensor configurations the car client can run: one front camera.
SUPPORTED_SENSORS = ("FRONT_FACING_CAMERA",)
_CAMERA_SENSORS = {"FRONT_FACING_CAMERA", "STEREO_CAMERAS"}
_LIDAR_SENSORS = {"LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR"}
_TRAINING_ALGORITHMS = ("clipped_ppo", "sac")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # HDF5 allows a user block before the superblock
_HEAD_BYTES = 4096
_READ_CHUNK = 1024 * 1024
_MIB = 1024 * 1024
#: Bytes a tar header (with pax or GNU long-name records) may take, plus read-ahead.
_TAR_HEADER_SLACK = 1 * _MIB


class ModelRejected(Exception):
    """The file is not an acceptable model. ``reason`` is a message for the racer."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InspectLimits:
    """Limits applied while inspecting archives.

    Attributes:
        max_members: most entries (files and folders) an archive may hold.
        max_uncompressed_bytes: most bytes an archive may unpack to, in total,
            counted while decompressing.
        max_ratio: largest unpacked/packed size ratio, checked once more than
            ``ratio_floor_bytes`` have been unpacked (small archives of text and
            tar padding legitimately compress very well).
        ratio_floor_bytes: see ``max_ratio``.
        max_metadata_bytes: largest ``model_metadata.json`` / Keras ``config.json``
            / ``metadata.json``.
    """

    max_members: int = 256
    max_uncompressed_bytes: int = 1024 * _MIB
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 16 * _MIB
    max_metadata_bytes: int = 1 * _MIB


@dataclass
class ModelInfo:
    """What inspection found. All sizes in bytes, digests lowercase hex.

    Attributes:
        format: ``"deepracer"``, ``"keras"``, ``"tflite"`` or ``"savedmodel"``.
        filename: the name the racer gave the file.
        size: file size.
        sha256, md5: digests of the whole file.
        container: ``"tar.gz"``, ``"hdf5"``, ``"zip"`` or ``"flatbuffer"``.
        members: archive member names (normalised, folders included), else empty.
        uncompressed_size: bytes the archive unpacks to (None for single files).
        model_pb_path, model_pb_size, model_pb_sha256, model_pb_md5: the DeepRacer
            frozen graph inside the archive (None for other formats).
        sensors: DeepRacer sensors (``["FRONT_FACING_CAMERA"]``).
        action_space_type: ``"discrete"`` or ``"continuous"`` (DeepRacer).
        action_space: discrete: list of ``{"steering_angle": deg, "speed": m/s, ...}``;
            continuous: ``{"steering_angle": {"low", "high"}, "speed": {"low", "high"}}``.
        neural_network: e.g. ``"DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"``.
        training_algorithm: ``"clipped_ppo"`` or ``"sac"``.
        version: DeepRacer metadata version (string) or Keras version for ``.keras``.
        metadata: the parsed ``model_metadata.json`` (DeepRacer) or
            ``{"metadata": ..., "config_class": ...}`` for ``.keras``; else None.
        saved_model_dir: folder holding ``saved_model.pb`` inside the zip ("" = top).
    """

    format: str
    filename: str
    size: int
    sha256: str
    md5: str
    container: str
    members: list[str] = field(default_factory=list)
    uncompressed_size: int | None = None
    model_pb_path: str | None = None
    model_pb_size: int | None = None
    model_pb_sha256: str | None = None
    model_pb_md5: str | None = None
    sensors: list[str] = field(default_factory=list)
    action_space_type: str | None = None
    action_space: list[dict[str, Any]] | dict[str, Any] | None = None
    neural_network: str | None = None
    training_algorithm: str | None = None
    version: str | None = None
    metadata: dict[str, Any] | None = None
    saved_model_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of all fields."""
        return asdict(self)


# --------------------------------------------------------------------------- helpers


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


def _fmt_mb(n: int | float) -> str:
    return f"{n / _MIB:.0f} MB" if n >= _MIB else f"{int(n)} bytes"


def _member_name(raw: str) -> str:
    """Normalise an archive member name, rejecting anything that could escape.

    Returns the name without leading ``./`` and without empty or ``.`` segments;
    ``""`` for the archive's own root entry (``.`` or ``./``).
    """
    shown = raw[:200]
    if "\x00" in raw:
        raise ModelRejected(f"The archive contains a member name with a NUL byte ({shown!r}).")
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        raise ModelRejected(
            f"The archive contains a member with an absolute path ({shown!r}); "
            "model archives must only contain relative paths."
        )
    if "\\" in raw:
        raise ModelRejected(
            f"The archive contains a member name with a backslash ({shown!r}); "
            "use '/' as the folder separator."
        )
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelRejected(
            f"The archive contains a member that points outside the archive ({shown!r} uses '..')."
        )
    return "/".join(parts)


def _read_limited(stream: BinaryIO, limit: int, what: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModelRejected(
            f"{what} is larger than {_fmt_mb(limit)}; this is not a normal model file."
        )
    return data


def _load_json(raw: bytes, what: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelRejected(
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})."
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelRejected(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    except RecursionError as exc:
        raise ModelRejected(f"{what} is nested too deeply to be valid metadata.") from exc


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes consumed from the underlying file."""

    def __init__(self, fh: BinaryIO):
        super().__init__()
        self._fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        n = len(data)
        memoryview(buffer)[:n] = data
        self.count += n
        return n


class _BombGuard:
    """Counts unpacked bytes as they stream and rejects bombs on the spot."""

    def __init__(self, limits: InspectLimits, packed_size: int, filename: str):
        self.limits = limits
        self.packed_size = max(packed_size, 1)
        self.filename = filename
        self.total = 0
        # While reading tar headers: the stream position past which more bytes
        # mean an oversized header (pax/GNU long-name records are read into
        # memory whole by tarfile). None = no such budget.
        self.budget_end: int | None = None

    def add(self, n: int, packed_so_far: int | None = None) -> None:
        self.total += n
        limits = self.limits
        if self.budget_end is not None and self.total > self.budget_end:
            raise ModelRejected(
                f"{self.filename} contains an oversized tar header (over "
                f"{_fmt_mb(_TAR_HEADER_SLACK)}); this is not a normal model archive."
            )
        if self.total > limits.max_uncompressed_bytes:
            raise ModelRejected(
                f"{self.filename} unpacks to more than {_fmt_mb(limits.max_uncompressed_bytes)} "
                "(a decompression bomb or not a normal model); rejected."
            )
        if self.total > limits.ratio_floor_bytes:
            packed = max(packed_so_far if packed_so_far is not None else self.packed_size, 1)
            ratio = self.total / packed
            if ratio > limits.max_ratio:
                raise ModelRejected(
                    f"{self.filename} unpacks to over {limits.max_ratio:.0f} times its "
                    f"compressed size ({_fmt_mb(self.total)} from {_fmt_mb(packed)} so far): "
                    "this looks like a decompression bomb; rejected."
                )


class _GuardedGunzip(io.RawIOBase):
    """Decompressed view of a gzip file that feeds every byte through a _BombGuard."""

    def __init__(self, fh: BinaryIO, guard: _BombGuard):
        super().__init__()
        self._raw = _CountingReader(fh)
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[arg-type]
        self._guard = guard

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Ask for at most 64 KiB at a time so a single call cannot unpack a lot
        # before the guard sees it.
        view = memoryview(buffer)[: 64 * 1024]
        n = self._gz.readinto(view)
        if n:
            self._guard.add(n, self._raw.count)
        return n

    def drain(self) -> None:
        """Read to the end, so the gzip trailer (CRC, length) is verified."""
        buf = bytearray(64 * 1024)
        while self.readinto(buf):
            pass


# --------------------------------------------------------------------- DeepRacer


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ModelRejected(
                    f"model_metadata.json: {what} must be a number, got {value!r}."
                ) from None
        else:
            raise ModelRejected(f"model_metadata.json: {what} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ModelRejected(f"model_metadata.json: {what} must be a finite number.")
    return float(value)


def parse_deepracer_metadata(raw: bytes) -> dict[str, Any]:
    """Parse and check a DeepRacer ``model_metadata.json``.

    Missing fields get the DeepRacer console's defaults: sensor
    ``["FRONT_FACING_CAMERA"]``, training algorithm ``clipped_ppo``, action space
    type from the action space's shape (list = discrete, object = continuous).

    Args:
        raw: the file's bytes.

    Returns:
        ``{"metadata": parsed_json, "sensors": [...], "action_space_type": str,
        "action_space": list|dict, "neural_network": str|None,
        "training_algorithm": str, "version": str|None}``.

    Raises:
        ModelRejected: not UTF-8/JSON, not an object, no or malformed action space,
            unknown training algorithm, or sensors the cars cannot run.
    """
    meta = _load_json(raw, "model_metadata.json")
    if not isinstance(meta, dict):
        raise ModelRejected("model_metadata.json must be a JSON object.")

    sensors_raw = meta.get("sensor", ["FRONT_FACING_CAMERA"])
    if isinstance(sensors_raw, str):
        sensors_raw = [sensors_raw]
    if not isinstance(sensors_raw, list) or not all(isinstance(s, str) for s in sensors_raw):
        raise ModelRejected("model_metadata.json: 'sensor' must be a list of sensor names.")
    sensors = [s.strip().upper() for s in sensors_raw]
    if not sensors:
        raise ModelRejected("model_metadata.json: 'sensor' is empty; the model needs a camera.")
    unsupported = [s for s in sensors if s not in SUPPORTED_SENSORS]
    if unsupported:
        if not any(s in _CAMERA_SENSORS for s in sensors):
            raise ModelRejected(
                f"This model uses only {', '.join(sensors)} and no camera; the cars drive with "
                "one front-facing camera. Train the model with FRONT_FACING_CAMERA only."
            )
        kinds = []
        if "STEREO_CAMERAS" in unsupported:
            kinds.append("stereo cameras")
        if any(s in _LIDAR_SENSORS for s in unsupported):
            kinds.append("LiDAR")
        other = [s for s in unsupported if s != "STEREO_CAMERAS" and s not in _LIDAR_SENSORS]
        if other:
            kinds.append("unknown sensors " + ", ".join(other))
        raise ModelRejected(
            f"This model needs {' and '.join(kinds)} ({', '.join(sensors)}); the cars drive with "
            "one front-facing camera. Train the model with FRONT_FACING_CAMERA only."
        )

    if "action_space" not in meta:
        raise ModelRejected("model_metadata.json has no 'action_space'.")
    space = meta["action_space"]
    declared = meta.get("action_space_type")
    if declared is not None:
        if not isinstance(declared, str) or declared.lower() not in ("discrete", "continuous"):
            raise ModelRejected(
                f"model_metadata.json: action_space_type must be 'discrete' or 'continuous', got {declared!r}."
            )
        declared = declared.lower()
    shape = (
        "discrete" if isinstance(space, list) else "continuous" if isinstance(space, dict) else None
    )
    if shape is None:
        raise ModelRejected(
            "model_metadata.json: 'action_space' must be a list (discrete) or an object (continuous)."
        )
    if declared is not None and declared != shape:
        raise ModelRejected(
            f"model_metadata.json says action_space_type is {declared!r} but the action space is {shape}."
        )

    if shape == "discrete":
        if not space:
            raise ModelRejected("model_metadata.json: the discrete action space is empty.")
        if len(space) > 1000:
            raise ModelRejected("model_metadata.json: more than 1000 discrete actions.")
        actions = []
        for i, action in enumerate(space):
            if not isinstance(action, dict):
                raise ModelRejected(f"model_metadata.json: action {i} is not an object.")
            for name in ("steering_angle", "speed"):
                if name not in action:
                    raise ModelRejected(f"model_metadata.json: action {i} has no '{name}'.")
            clean = dict(action)
            clean["steering_angle"] = _number(
                action["steering_angle"], f"action {i} steering_angle"
            )
            clean["speed"] = _number(action["speed"], f"action {i} speed")
            actions.append(clean)
        action_space: list[dict[str, Any]] | dict[str, Any] = actions
    else:
        ranges: dict[str, Any] = {}
        for name in ("steering_angle", "speed"):
            rng = space.get(name)
            if not isinstance(rng, dict) or "low" not in rng or "high" not in rng:
                raise ModelRejected(
                    f"model_metadata.json: the continuous action space needs '{name}' with 'low' and 'high'."
                )
            low = _number(rng["low"], f"{name} low")
            high = _number(rng["high"], f"{name} high")
            if low > high:
                raise ModelRejected(
                    f"model_metadata.json: {name} low ({low}) is above high ({high})."
                )
            ranges[name] = {"low": low, "high": high}
        action_space = ranges

    algorithm = meta.get("training_algorithm", "clipped_ppo")
    if not isinstance(algorithm, str) or algorithm.lower() not in _TRAINING_ALGORITHMS:
        raise ModelRejected(
            f"model_metadata.json: training algorithm {algorithm!r} is not supported "
            f"(supported: {', '.join(_TRAINING_ALGORITHMS)})."
        )
    algorithm = algorithm.lower()
    if algorithm == "sac" and shape != "continuous":
        raise ModelRejected("model_metadata.json: SAC models need a continuous action space.")

    network = meta.get("neural_network")
    if network is not None and not isinstance(network, str):
        raise ModelRejected("model_metadata.json: 'neural_network' must be a string.")
    version = meta.get("version")
    if version is not None and (isinstance(version, (dict, list, bool))):
        raise ModelRejected("model_metadata.json: 'version' must be a string or a number.")

    return {
        "metadata": meta,
        "sensors": sensors,
        "action_space_type": shape,
        "action_space": action_space,
        "neural_network": network,
        "training_algorithm": algorithm,
        "version": None if version is None else str(version),
    }


_MODEL_PB_PLACES = ("agent/model.pb", "model.pb")


def _inspect_deepracer(path: Path, info: ModelInfo, limits: InspectLimits) -> None:
    guard = _BombGuard(limits, info.size, info.filename)
    members: list[str] = []
    seen: set[str] = set()
    metadata_raw: bytes | None = None
    model_pbs: list[str] = []
    pb_digest: tuple[int, str, str] | None = None
    nested_metadata: list[str] = []
    try:
        with open(path, "rb") as fh:
            stream = _GuardedGunzip(fh, guard)
            guard.budget_end = _TAR_HEADER_SLACK
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for count, member in enumerate(tar, start=1):
                    # This member's data (in 512-byte blocks) and the next header
                    # may follow; anything more is a header that tarfile would
                    # otherwise buffer whole in memory.
                    guard.budget_end = (
                        guard.total + -(-member.size // 512) * 512 + _TAR_HEADER_SLACK
                    )
                    if count > limits.max_members:
                        raise ModelRejected(
                            f"The archive has more than {limits.max_members} members; "
                            "a DeepRacer model has only a few files."
                        )
                    name = _member_name(member.name)
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
                        metadata_raw = _read_limited(
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
    info.model_pb_path = model_pbs[0]
    info.model_pb_size, info.model_pb_sha256, info.model_pb_md5 = pb_digest
    info.metadata = parsed["metadata"]
    info.sensors = parsed["sensors"]
    info.action_space_type = parsed["action_space_type"]
    info.action_space = parsed["action_space"]
    info.neural_network = parsed["neural_network"]
    info.training_algorithm = parsed["training_algorithm"]
    info.version = parsed["version"]


def _digest_stream(stream: BinaryIO) -> tuple[int, str, str]:
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        sha.update(chunk)
        md5.update(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


# ------------------------------------------------------------------------- zip


def _zip_declared_entries(path: Path) -> int | None:
    """Number of entries the zip's end-of-central-directory record declares (zip64
    aware), read before zipfile parses the whole central directory into memory.
    None when no end record is found (zipfile then reports the damage)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + 22 > len(tail):
            return None
        (entries,) = struct.unpack_from("<H", tail, pos + 10)
        if entries != 0xFFFF:
            return entries
        locator = pos - 20
        if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return entries
        (eocd64_offset,) = struct.unpack_from("<Q", tail, locator + 8)
        if eocd64_offset + 56 > size:
            return None
        fh.seek(eocd64_offset)
        record = fh.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        (entries64,) = struct.unpack_from("<Q", record, 32)
        return entries64


def _scan_zip(
    path: Path, info: ModelInfo, limits: InspectLimits
) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """Open a zip, check every member, stream every member through the bomb guard."""
    declared_entries = _zip_declared_entries(path)
    if declared_entries is not None and declared_entries > limits.max_members:
        raise ModelRejected(
            f"The archive has {declared_entries} members, more than the limit of {limits.max_members}."
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelRejected(f"{info.filename} is not a readable zip archive ({exc}).") from exc
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ModelRejected(
                f"The archive has {len(infos)} members, more than the limit of {limits.max_members}."
            )
        declared = 0
        files: dict[str, zipfile.ZipInfo] = {}
        members: list[str] = []
        for zi in infos:
            name = _member_name(zi.filename)
            shown = name or zi.filename
            mode = (zi.external_attr >> 16) & 0xFFFF
            if mode:
                if stat.S_ISLNK(mode):
                    raise ModelRejected(
                        f"The archive contains a symbolic link ({shown!r}); links are not allowed in model archives."
                    )
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    raise ModelRejected(f"The archive contains a device file ({shown!r}).")
                if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise ModelRejected(f"The archive contains a FIFO or socket ({shown!r}).")
            if zi.flag_bits & 0x1:
                raise ModelRejected(f"The archive contains an encrypted member ({shown!r}).")
            if zi.is_dir():
                if name:
                    members.append(name + "/")
                continue
            if not name:
                raise ModelRejected("The archive contains a file with an empty name.")
            if name in files:
                raise ModelRejected(f"The archive contains {name!r} twice.")
            files[name] = zi
            members.append(name)
            declared += zi.file_size
        if declared > limits.max_uncompressed_bytes:
            raise ModelRejected(
                f"{info.filename} unpacks to more than {_fmt_mb(limits.max_uncompressed_bytes)}; rejected."
            )
        # Headers can lie: count the real bytes while decompressing every member.
        guard = _BombGuard(limits, info.size, info.filename)
        buf = bytearray(64 * 1024)
        for zi in files.values():
            with zf.open(zi) as member:
                while n := member.readinto(buf):
                    guard.add(n)
        info.members = members
        info.uncompressed_size = guard.total
        return zf, files
    except ModelRejected:
        zf.close()
        raise
    except (
        zipfile.BadZipFile,
        OSError,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        zf.close()
        raise ModelRejected(
            f"{info.filename} is a damaged or unsupported zip archive ({exc})."
        ) from exc


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
            raw = _read_limited(fh, limits.max_metadata_bytes, f"{name} in the .keras file")  # type: ignore[arg-type]
        value = _load_json(raw, f"{name} in the .keras file")
        if not isinstance(value, dict):
            raise ModelRejected(f"{name} in the .keras file must be a JSON object.")
        parsed[name] = value
    keras_meta = parsed["metadata.json"]
    config = parsed["config.json"]
    info.version = str(keras_meta["keras_version"]) if "keras_version" in keras_meta else None
    info.metadata = {
        "metadata": keras_meta,
        "config_class": config.get("class_name"),
        "has_weights": any(n.endswith(".weights.h5") or n.endswith(".weights.npz") for n in files),
    }


def _inspect_savedmodel_zip(files: dict[str, zipfile.ZipInfo], info: ModelInfo) -> None:
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
    info.saved_model_dir = folder


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
        return ModelInfo("keras", filename, size, sha256, md5, container="hdf5")
    if content == "tflite":
        (root_offset,) = struct.unpack_from("<I", head, 0)
        if size < 16 or not 8 <= root_offset < size:
            raise ModelRejected(
                f"{filename} has a TensorFlow Lite identifier but is damaged (bad root offset)."
            )
        return ModelInfo("tflite", filename, size, sha256, md5, container="flatbuffer")

    # zip: .keras or zipped SavedModel
    info = ModelInfo("keras", filename, size, sha256, md5, container="zip")
    zf, files = _scan_zip(path, info, limits)
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
        _inspect_savedmodel_zip(files, info)
        return info
