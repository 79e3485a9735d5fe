"""Donkey Car "tub v2" datastore: write and read driving records.

Layout of a tub folder (the format Donkey Car 4.x/5.x writes, so tubs move both ways):

* ``manifest.json`` — five newline-terminated JSON lines:
  1. list of input keys (e.g. ``["cam/image_array", "user/angle", ...]``);
  2. list of their types (``image_array``, ``float``, ``str``, ``int``, ``boolean``,
     ``list``, ``vector``, ``nparray``);
  3. user metadata (object);
  4. manifest metadata (object: ``created_at`` UNIX seconds, ``sessions`` with
     ``all_full_ids``, ``last_id``, ``last_full_id``);
  5. catalog metadata (object: ``paths`` catalog file names, ``current_index`` the next
     record index, ``max_len`` records per catalog, ``deleted_indexes``).
* ``catalog_N.catalog`` — one JSON object per line (keys sorted), ``max_len`` lines each;
* ``catalog_N.catalog_manifest`` — one JSON line: ``path``, ``created_at``,
  ``start_index`` (index of the catalog's first record), ``line_lengths`` (characters
  per catalog line, newline included);
* ``images/`` — JPEG files named ``{index}_{key with / as _}_.jpg``; the record stores
  the file name.

Each record also carries ``_index`` (int), ``_session_id`` (``"yy-mm-dd_N"``) and
``_timestamp_ms`` (UNIX milliseconds). Deleted records stay in the catalogs; their
indexes are listed in ``deleted_indexes`` and readers skip them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_KEY = "cam/image_array"
ANGLE_KEY = "user/angle"
THROTTLE_KEY = "user/throttle"
MODE_KEY = "user/mode"

#: The inputs a recording writes (Donkey's default for a manually driven car).
DEFAULT_INPUTS = (IMAGE_KEY, ANGLE_KEY, THROTTLE_KEY, MODE_KEY)
DEFAULT_TYPES = ("image_array", "float", "float", "str")

_SUPPORTED_TYPES = {"image_array", "image", "float", "str", "int", "boolean",
                    "list", "vector", "nparray"}
_NEWLINE = "\n"


class TubError(ValueError):
    """A tub folder is missing, malformed, or a record does not fit its declared types."""


def image_file_name(index: int, key: str) -> str:
    """Return Donkey's image file name for record ``index`` and input ``key``.

    ``image_file_name(7, "cam/image_array") == "7_cam_image_array_.jpg"``.
    """
    return f"{index}_{key.replace('/', '_')}_.jpg"


def _jsonline(obj) -> str:
    return json.dumps(obj, allow_nan=False, sort_keys=True) + _NEWLINE


class TubWriter:
    """Append records to a tub folder (created if missing), in Donkey's tub v2 format.

    ``inputs``/``types``: parallel sequences of keys and type names (see module doc);
    ``metadata``: user metadata, a dict or a list of ``(key, value)`` pairs;
    ``max_catalog_len``: records per ``catalog_N.catalog`` file (Donkey's default 1000);
    ``jpeg_quality``: 1..100 for image inputs.

    Opening an existing tub continues it (new session id, next index, same inputs; a
    mismatch of inputs raises :class:`TubError`). Use as a context manager or call
    :meth:`close`; the manifest is rewritten every ``flush_every`` records and on close.
    """

    def __init__(self, path: str | os.PathLike, inputs: Sequence[str] = DEFAULT_INPUTS,
                 types: Sequence[str] = DEFAULT_TYPES, metadata=None,
                 max_catalog_len: int = 1000, jpeg_quality: int = 95,
                 flush_every: int = 100) -> None:
        if len(inputs) != len(types):
            raise TubError(f"{len(inputs)} inputs but {len(types)} types")
        bad = [t for t in types if t not in _SUPPORTED_TYPES]
        if bad:
            raise TubError(f"unsupported input types: {bad}")
        if max_catalog_len < 1:
            raise TubError("max_catalog_len must be at least 1")
        self.path = Path(path).expanduser().absolute()
        self.images_path = self.path / "images"
        self.images_path.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = int(jpeg_quality)
        self.flush_every = max(1, int(flush_every))
        self._catalog_file = None
        manifest = self.path / "manifest.json"
        if manifest.exists() and manifest.stat().st_size > 0:
            head = _read_manifest(self.path)
            if list(head["inputs"]) != list(inputs) or list(head["types"]) != list(types):
                raise TubError(f"{self.path}: existing tub has inputs {head['inputs']}")
            self.inputs, self.types = list(head["inputs"]), list(head["types"])
            self.metadata = head["metadata"]
            self.manifest_metadata = head["manifest_metadata"]
            cat = head["catalog_metadata"]
            self.catalog_paths = list(cat["paths"])
            self.current_index = int(cat["current_index"])
            self.max_len = int(cat["max_len"])
            self.deleted_indexes = set(cat.get("deleted_indexes", []))
        else:
            self.inputs, self.types = list(inputs), list(types)
            if isinstance(metadata, dict):
                self.metadata = dict(metadata)
            else:
                self.metadata = {k: v for k, v in (metadata or [])}
            self.manifest_metadata = {"created_at": time.time()}
            self.catalog_paths = []
            self.current_index = 0
            self.max_len = int(max_catalog_len)
            self.deleted_indexes = set()
        self.input_types = dict(zip(self.inputs, self.types, strict=True))
        self.session_id = self._new_session()
        self._since_flush = 0
        self._open_catalog(new=not self.catalog_paths)
        self._write_manifest()

    # -- sessions and catalogs ----------------------------------------------------------
    def _new_session(self) -> str:
        sessions = self.manifest_metadata.setdefault("sessions", {"all_full_ids": []})
        sessions.setdefault("all_full_ids", [])
        this_id = int(sessions.get("last_id", -1)) + 1
        full_id = f"{time.strftime('%y-%m-%d')}_{this_id}"
        sessions["last_id"] = this_id
        sessions["last_full_id"] = full_id
        sessions["all_full_ids"].append(full_id)
        return full_id

    def _open_catalog(self, new: bool) -> None:
        if self._catalog_file is not None:
            self._write_catalog_manifest()
            self._catalog_file.close()
        if new:
            name = f"catalog_{len(self.catalog_paths)}.catalog"
            self.catalog_paths.append(name)
            self._catalog_meta = {
                "path": name.replace(".catalog", ".catalog_manifest"),
                "created_at": time.time(), "start_index": self.current_index,
                "line_lengths": []}
        else:
            name = self.catalog_paths[-1]
            self._catalog_meta = _read_catalog_manifest(self.path / name)
        self._catalog_file = open(self.path / name, "a", newline=_NEWLINE, encoding="utf-8")
        self._write_catalog_manifest()

    def _write_catalog_manifest(self) -> None:
        meta_path = self.path / self._catalog_meta["path"]
        meta_path.write_text(_jsonline(self._catalog_meta), encoding="utf-8")

    def _write_manifest(self) -> None:
        catalog_metadata = {"paths": self.catalog_paths, "current_index": self.current_index,
                            "max_len": self.max_len,
                            "deleted_indexes": sorted(self.deleted_indexes)}
        text = "".join(json.dumps(x) + _NEWLINE for x in (
            self.inputs, self.types, self.metadata, self.manifest_metadata, catalog_metadata))
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path / "manifest.json")

    def flush(self) -> None:
        """Write the catalog, its catalog manifest and ``manifest.json`` to disk."""
        if self._catalog_file is None:
            return
        self._catalog_file.flush()
        self._write_catalog_manifest()
        self._write_manifest()
        self._since_flush = 0

    # -- records ------------------------------------------------------------------------
    def write_record(self, record: dict, timestamp_ms: int | None = None) -> int:
        """Store one record and return its index (0-based, increasing).

        ``record`` maps input keys to values; unknown keys and ``None`` values are
        skipped. ``image_array`` values are ``uint8`` arrays ``(H, W, 3)`` RGB or
        ``(H, W)`` grey, saved as JPEG. ``timestamp_ms`` defaults to the wall clock
        (UNIX ms). Raises :class:`TubError` for a closed writer or a bad value.
        """
        if self._catalog_file is None:
            raise TubError("tub writer is closed")
        if self.current_index > 0 and self.current_index % self.max_len == 0:
            self._open_catalog(new=True)
        index = self.current_index
        contents = {}
        for key, value in record.items():
            kind = self.input_types.get(key)
            if value is None or kind is None:
                continue
            contents[key] = self._convert(key, kind, value, index)
        contents["_index"] = index
        contents["_session_id"] = self.session_id
        contents["_timestamp_ms"] = int(round(time.time() * 1000)) \
            if timestamp_ms is None else int(timestamp_ms)
        line = _jsonline(contents)
        self._catalog_file.write(line)
        self._catalog_meta["line_lengths"].append(len(line))
        self.current_index += 1
        self._since_flush += 1
        if self._since_flush >= self.flush_every:
            self.flush()
        return index

    def _convert(self, key: str, kind: str, value, index: int):
        try:
            if kind == "float":
                return float(value)
            if kind == "int":
                return int(value)
            if kind == "boolean":
                return bool(value)
            if kind == "str":
                return str(value)
            if kind == "nparray":
                return np.asarray(value).tolist()
            if kind in ("list", "vector"):
                return [v.item() if isinstance(v, np.generic) else v for v in value]
        except (TypeError, ValueError) as exc:
            raise TubError(f"{key}: cannot store {value!r} as {kind}") from exc
        # image_array / image
        image = value if isinstance(value, Image.Image) else _array_to_image(key, value)
        name = image_file_name(index, key)
        image.save(self.images_path / name, format="JPEG", quality=self.jpeg_quality)
        return name

    def delete_records(self, indexes: int | Iterable[int]) -> None:
        """Mark records deleted (they stay on disk; readers skip them)."""
        indexes = {indexes} if isinstance(indexes, int) else set(indexes)
        self.deleted_indexes.update(int(i) for i in indexes)
        self._write_manifest()

    def restore_records(self, indexes: int | Iterable[int]) -> None:
        """Undo :meth:`delete_records` for ``indexes``."""
        indexes = {indexes} if isinstance(indexes, int) else set(indexes)
        self.deleted_indexes.difference_update(int(i) for i in indexes)
        self._write_manifest()

    def __len__(self) -> int:
        return self.current_index - len(self.deleted_indexes)

    def close(self) -> None:
        """Flush everything and close the catalog file (idempotent)."""
        if self._catalog_file is None:
            return
        self.flush()
        self._catalog_file.close()
        self._catalog_file = None

    def __enter__(self) -> TubWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _array_to_image(key: str, value) -> Image.Image:
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        if arr.size and arr.max() <= 1.0 and np.issubdtype(arr.dtype, np.floating):
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise TubError(f"{key}: image must be (H, W, 3) or (H, W), got {arr.shape}")
    return Image.fromarray(arr)


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [line.rstrip("\r\n") for line in handle]


def _read_manifest(tub_path: Path) -> dict:
    path = tub_path / "manifest.json"
    if not path.exists():
        raise TubError(f"{tub_path}: no manifest.json (not a tub v2 folder)")
    lines = [line for line in _read_lines(path) if line.strip()]
    if len(lines) < 5:
        raise TubError(f"{path}: expected 5 JSON lines, found {len(lines)}")
    try:
        parsed = [json.loads(line) for line in lines[:5]]
    except json.JSONDecodeError as exc:
        raise TubError(f"{path}: bad JSON ({exc})") from exc
    inputs, types, metadata, manifest_metadata, catalog_metadata = parsed
    if not isinstance(inputs, list) or not isinstance(types, list) \
            or len(inputs) != len(types):
        raise TubError(f"{path}: inputs and types must be lists of the same length")
    for key in ("paths", "current_index"):
        if key not in catalog_metadata:
            raise TubError(f"{path}: catalog metadata lacks {key!r}")
    return {"inputs": inputs, "types": types, "metadata": metadata,
            "manifest_metadata": manifest_metadata, "catalog_metadata": catalog_metadata}


def _read_catalog_manifest(catalog_path: Path) -> dict:
    meta_path = catalog_path.with_name(f"{catalog_path.stem}.catalog_manifest")
    if meta_path.exists():
        lines = [line for line in _read_lines(meta_path) if line.strip()]
        if lines:
            return json.loads(lines[0])
    return {"path": meta_path.name, "created_at": time.time(), "start_index": 0,
            "line_lengths": []}


class Tub:
    """A tub opened for reading: ``Tub(path)``; raises :class:`TubError` if malformed.

    Attributes: ``inputs``, ``types``, ``metadata``, ``manifest_metadata``,
    ``deleted_indexes`` (set of int), ``records`` (list of dicts, deleted ones skipped,
    each with ``_index``), ``skipped_lines`` (unparsable catalog lines, ignored as
    Donkey does). Records are indexed by their running position over all catalogs,
    as Donkey numbers them.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser().absolute()
        head = _read_manifest(self.path)
        self.inputs = head["inputs"]
        self.types = head["types"]
        self.input_types = dict(zip(self.inputs, self.types, strict=True))
        self.metadata = head["metadata"]
        self.manifest_metadata = head["manifest_metadata"]
        cat = head["catalog_metadata"]
        self.catalog_paths = list(cat["paths"])
        self.max_len = int(cat.get("max_len", 1000))
        self.deleted_indexes = {int(i) for i in cat.get("deleted_indexes", [])}
        self.skipped_lines = 0
        self.records = list(self._iter_records())

    def _iter_records(self) -> Iterator[dict]:
        index = 0
        for name in self.catalog_paths:
            catalog = self.path / name
            if not catalog.exists():
                raise TubError(f"{self.path}: catalog {name} listed but missing")
            for line in _read_lines(catalog):
                if not line.strip():
                    continue
                current, index = index, index + 1
                if current in self.deleted_indexes:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.skipped_lines += 1
                    continue
                record.setdefault("_index", current)
                yield record

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def image_path(self, record: dict, key: str = IMAGE_KEY) -> Path:
        """Full path of the image file named in ``record[key]`` (KeyError if absent)."""
        return self.images_path / record[key]

    @property
    def images_path(self) -> Path:
        """The ``images/`` folder of the tub."""
        return self.path / "images"

    def image(self, record: dict, key: str = IMAGE_KEY, mode: str = "RGB") -> np.ndarray:
        """Load the image of ``record`` as ``uint8`` ``(H, W, 3)`` (``mode="RGB"``) or
        ``(H, W)`` (``mode="L"``). Raises ``FileNotFoundError`` if the file is gone."""
        with Image.open(self.image_path(record, key)) as img:
            return np.asarray(img.convert(mode))


def load_driving_data(tub_paths: Sequence[str | os.PathLike],
                      size: tuple[int, int] = (120, 160)
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load every non-deleted record of the tubs as training arrays.

    Returns ``(images, angles, throttles)``: ``uint8 (N, H, W, 3)`` RGB resized to
    ``size`` = (H, W) pixels when needed, ``float32 (N,)`` angles in -1..1 and
    ``float32 (N,)`` throttles in -1..1. Records without an image, angle or throttle
    are skipped. Raises :class:`TubError` when no usable record is found.
    """
    images, angles, throttles = [], [], []
    for tub_path in tub_paths:
        tub = Tub(tub_path)
        for record in tub:
            if IMAGE_KEY not in record or ANGLE_KEY not in record \
                    or THROTTLE_KEY not in record:
                continue
            img = tub.image(record)
            if img.shape[:2] != tuple(size):
                img = np.asarray(Image.fromarray(img).resize((size[1], size[0]),
                                                             Image.BILINEAR))
            images.append(img)
            angles.append(float(record[ANGLE_KEY]))
            throttles.append(float(record[THROTTLE_KEY]))
    if not images:
        raise TubError(f"no usable records (image, angle, throttle) in {list(tub_paths)}")
    return (np.stack(images), np.asarray(angles, np.float32),
            np.clip(np.asarray(throttles, np.float32), -1.0, 1.0))
