"""What model inspection returns, what bounds it, and how it refuses a file.

:class:`ModelInfo` is the result of :func:`~drem.models_mgr.inspect.inspect_model_file`,
:class:`InspectLimits` the archive limits it applies, and :class:`ModelRejected`
the error that carries a message for the racer. Shared by :mod:`.inspect`,
:mod:`.archive_guard` and :mod:`.metadata`; import them from
:mod:`drem.models_mgr.inspect`. No Flask imports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from car_client.protocol import MODEL_FORMATS

__all__ = ["FORMATS", "InspectLimits", "ModelInfo", "ModelRejected"]

#: Format names stored on the model record (the car protocol's model formats).
FORMATS = MODEL_FORMATS

_MIB = 1024 * 1024


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
        max_graph_bytes: largest graph read whole to check its ops (DeepRacer
            ``model.pb``, ``saved_model.pb``, a ``.tflite`` file); real DeepRacer
            graphs are 4-40 MB.
    """

    max_members: int = 256
    max_uncompressed_bytes: int = 1024 * _MIB
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 16 * _MIB
    max_metadata_bytes: int = 1 * _MIB
    max_graph_bytes: int = 256 * _MIB


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
        input_rows: a Donkey model's input height (rows of the camera frame it takes,
            120 uncropped) when its config says it (Keras), else None.
        shipped_settings: Donkey settings read from a ``myconfig.py`` / ``config.py``
            in the zip (``{"categorical_throttle_range", "crop_top", "crop_bottom"}``,
            keys present only when set there), else None.
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
    input_rows: int | None = None
    shipped_settings: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of all fields."""
        return asdict(self)
