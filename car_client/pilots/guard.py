"""The car's own check of a model file before anything loads it.

The server inspects every upload (``drem/models_mgr/graph_guard.py``), but the car
does not trust that: :func:`refuse_unsafe_model` reads the graph out of the file and
runs the checks of :mod:`car_client.model_check` again (no TensorFlow: nothing
in the file runs while it is checked). Loading happens only when it returns.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

from car_client.model_check import (
    graph_def_problems,
    keras_config_problems,
    saved_model_problems,
    tflite_problems,
)
from car_client.pilots.deepracer import parse_metadata, read_archive

__all__ = ["refuse_unsafe_model"]

#: Largest graph file read for the check (bytes); real DeepRacer graphs are 4-40 MB.
MAX_GRAPH_BYTES = 512 * 1024 * 1024


def _refuse(name: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"the car refuses {name}: " + "; ".join(problems))


def _keras_zip_config(path: Path) -> object:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


def _h5_config(path: Path) -> object:
    import h5py  # only .h5 models need it (installed with tensorflow)

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise ValueError(f"{path.name} holds weights only (no model_config); save the whole model")
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


def _saved_model_bytes(path: Path) -> list[bytes]:
    if path.is_dir():
        return [p.read_bytes() for p in sorted(path.rglob("saved_model.pb"))]
    with zipfile.ZipFile(path) as zf:
        names = [i for i in zf.infolist() if Path(i.filename).name == "saved_model.pb"]
        if any(i.file_size > MAX_GRAPH_BYTES for i in names):
            raise ValueError(f"saved_model.pb in {path.name} is larger than the car accepts")
        return [zf.read(i) for i in names]


def refuse_unsafe_model(path: str | Path, model_format: str) -> None:
    """Check a model file's graph before it is loaded.

    model_format: ``deepracer``, ``keras``, ``savedmodel`` or ``tflite``.
    Raises ``ValueError`` naming every op, layer or operator outside the allow-lists
    (``the car refuses <file>: it uses the TensorFlow op 'WriteFile' ...``), and for a
    file whose graph cannot be read. Returns None when the model may be loaded."""
    path = Path(path)
    name = path.name
    try:
        if model_format == "deepracer":
            meta, graph = read_archive(path)
            parse_metadata(meta)  # a LiDAR model is refused for its sensors first
            _refuse(name, graph_def_problems(graph))
        elif model_format == "savedmodel":
            graphs = _saved_model_bytes(path)
            if graphs:  # a zip of one .h5/.keras file is checked as Keras by the runner
                for data in graphs:
                    _refuse(name, saved_model_problems(data))
            else:
                inner = _single_keras_in_zip(path)
                if inner is None:
                    raise ValueError(f"no saved_model.pb in {name}")
                _refuse(name, keras_config_problems(inner))
        elif model_format == "keras":
            config = _keras_zip_config(path) if zipfile.is_zipfile(path) else _h5_config(path)
            _refuse(name, keras_config_problems(config))
        elif model_format == "tflite":
            if path.stat().st_size > MAX_GRAPH_BYTES:
                raise ValueError(f"{name} is larger than the car accepts")
            _refuse(name, tflite_problems(path.read_bytes()))
    except ValueError:
        raise
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the car cannot read the graph of {name}: {exc}") from exc


def _single_keras_in_zip(path: Path) -> object | None:
    """The config of the only ``.keras``/``.h5`` file inside a zip (None if not one)."""
    if path.is_dir():
        return None
    with zipfile.ZipFile(path) as zf:
        inner = [i for i in zf.infolist() if Path(i.filename).suffix in (".h5", ".keras")]
        if len(inner) != 1:
            return None
        data = zf.read(inner[0])
    if inner[0].filename.endswith(".keras"):
        with zipfile.ZipFile(io.BytesIO(data)) as kz:
            return json.loads(kz.read("config.json"))
    with tempfile.NamedTemporaryFile(suffix=".h5") as tmp:
        tmp.write(data)
        tmp.flush()
        return _h5_config(Path(tmp.name))
