"""inspect_model_file: formats, metadata, digests, and every kind of bad archive."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from drem.models_mgr.inspect import (
    InspectLimits,
    ModelInfo,
    ModelRejected,
    inspect_model_file,
    parse_deepracer_metadata,
)

from . import factories as f
from .factories import Entry
from .inspection import reject, tree


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


# ----------------------------------------------------------------------- good files


def test_deepracer_discrete_model(work: Path) -> None:
    path = f.deepracer_tar_gz(work)
    before = tree(work.parent)
    info = inspect_model_file(path, "My Model.tar.gz")
    assert tree(work.parent) == before
    assert isinstance(info, ModelInfo)
    assert info.format == "deepracer"
    assert info.container == "tar.gz"
    assert info.filename == "My Model.tar.gz"
    data = path.read_bytes()
    assert info.size == len(data)
    assert (info.sha256, info.md5) == digests(data)
    pb = f.tiny_model_pb()
    assert info.model_pb_path == "agent/model.pb"
    assert info.model_pb_size == len(pb)
    assert (info.model_pb_sha256, info.model_pb_md5) == digests(pb)
    assert info.sensors == ["FRONT_FACING_CAMERA"]
    assert info.action_space_type == "discrete"
    assert isinstance(info.action_space, list) and len(info.action_space) == 4
    assert info.action_space[3] == {"steering_angle": 0.0, "speed": 2.5, "index": 3}
    assert info.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert info.training_algorithm == "clipped_ppo"
    assert info.version == "5"
    assert info.metadata == f.discrete_metadata()
    assert set(info.members) == {"model_metadata.json", "agent/", "agent/model.pb"}
    assert info.uncompressed_size and info.uncompressed_size >= len(pb)
    # JSON-serialisable for the database column
    assert json.loads(json.dumps(info.to_dict()))["model_pb_sha256"] == info.model_pb_sha256


def test_deepracer_continuous_sac_model(work: Path) -> None:
    path = f.deepracer_tar_gz(work, metadata=f.continuous_metadata())
    info = inspect_model_file(path, path.name)
    assert info.action_space_type == "continuous"
    assert info.training_algorithm == "sac"
    assert info.action_space == {
        "steering_angle": {"low": -30.0, "high": 30.0},
        "speed": {"low": 0.5, "high": 4.0},
    }


def test_deepracer_dot_slash_names_root_model_pb_and_defaults(work: Path) -> None:
    """`tar -C dir .` style names, model.pb at the top, old metadata without
    sensor / action_space_type / training_algorithm / version."""
    meta = {"action_space": f.discrete_metadata()["action_space"]}
    path = f.write_tar_gz(
        work / "old.tgz",
        [
            Entry(".", kind=tarfile.DIRTYPE),
            Entry("./model_metadata.json", json.dumps(meta).encode()),
            Entry("./model.pb", f.tiny_model_pb()),
        ],
    )
    info = inspect_model_file(path, "old.tgz")
    assert info.model_pb_path == "model.pb"
    assert info.sensors == ["FRONT_FACING_CAMERA"]
    assert info.action_space_type == "discrete"
    assert info.training_algorithm == "clipped_ppo"
    assert info.version is None


def test_keras_h5(work: Path) -> None:
    path = f.keras_h5(work)
    info = inspect_model_file(path, "donkey.h5")
    assert (info.format, info.container) == ("keras", "hdf5")
    assert (info.sha256, info.md5) == digests(path.read_bytes())
    assert info.model_pb_sha256 is None


def test_keras_v3_zip(work: Path) -> None:
    info = inspect_model_file(f.keras_zip(work), "donkey.keras")
    assert (info.format, info.container) == ("keras", "zip")
    assert info.version == "3.10.0"
    assert info.metadata is not None and info.metadata["config_class"] == "Functional"
    assert info.metadata["has_weights"] is True
    assert set(info.members) == {"metadata.json", "config.json", "model.weights.h5"}


def test_tflite(work: Path) -> None:
    info = inspect_model_file(f.tflite_file(work), "pilot.tflite")
    assert (info.format, info.container) == ("tflite", "flatbuffer")


@pytest.mark.parametrize("top", ["donkey", ""])
def test_zipped_savedmodel(work: Path, top: str) -> None:
    info = inspect_model_file(f.savedmodel_zip(work, top=top), "pilot.zip")
    assert info.format == "savedmodel"
    assert info.saved_model_dir == top
    assert (top + "/saved_model.pb").lstrip("/") in info.members


# ------------------------------------------------------------------ bad tar members

BadBuilder = Callable[[Path], Path]

BAD_TARS: dict[str, tuple[BadBuilder, str]] = {
    "parent": (
        lambda d: f.deepracer_with(d, "dotdot.tar.gz", [Entry("../x", b"escaped")]),
        "points outside the archive",
    ),
    "parent-nested": (
        lambda d: f.deepracer_with(d, "dotdot2.tar.gz", [Entry("agent/../../x", b"e")]),
        "points outside the archive",
    ),
    "symlink": (
        lambda d: f.deepracer_with(
            d, "sym.tar.gz", [Entry("agent/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd")]
        ),
        "symbolic link",
    ),
    "hardlink": (
        lambda d: f.deepracer_with(
            d, "hard.tar.gz", [Entry("agent/hard", kind=tarfile.LNKTYPE, linkname="/etc/passwd")]
        ),
        "hard link",
    ),
    "chardev": (
        lambda d: f.deepracer_with(d, "dev.tar.gz", [Entry("agent/null", kind=tarfile.CHRTYPE)]),
        "device file",
    ),
    "blockdev": (
        lambda d: f.deepracer_with(d, "blk.tar.gz", [Entry("agent/sda", kind=tarfile.BLKTYPE)]),
        "device file",
    ),
    "fifo": (
        lambda d: f.deepracer_with(d, "fifo.tar.gz", [Entry("agent/pipe", kind=tarfile.FIFOTYPE)]),
        "FIFO",
    ),
    "two-model-pb": (f.two_model_pb, "more than one model.pb"),
    "no-metadata": (f.without_metadata, "no model_metadata.json"),
    "invalid-json": (f.invalid_json_metadata, "model_metadata.json is not valid JSON"),
    "not-utf8": (
        lambda d: f.deepracer_tar_gz(d, "latin.tar.gz", metadata=b'{"x": "\xe9"}'),
        "not UTF-8",
    ),
    "metadata-not-object": (
        lambda d: f.deepracer_tar_gz(d, "list.tar.gz", metadata=b"[1, 2]"),
        "must be a JSON object",
    ),
    "metadata-in-folder": (
        lambda d: f.write_tar_gz(
            d / "nested.tar.gz",
            [
                Entry("export/model_metadata.json", json.dumps(f.discrete_metadata()).encode()),
                Entry("agent/model.pb", f.tiny_model_pb()),
            ],
        ),
        "found 'export/model_metadata.json' in a folder",
    ),
    "no-model-pb": (
        lambda d: f.write_tar_gz(
            d / "nopb.tar.gz",
            [Entry("model_metadata.json", json.dumps(f.discrete_metadata()).encode())],
        ),
        "no agent/model.pb",
    ),
    "model-pb-misplaced": (
        lambda d: f.deepracer_tar_gz(d, "deep.tar.gz", pb_path="x/y/model.pb"),
        "a DeepRacer model has it at agent/model.pb",
    ),
    "empty-model-pb": (
        lambda d: f.deepracer_tar_gz(d, "emptypb.tar.gz", pb=b""),
        "agent/model.pb is empty",
    ),
    "duplicate-member": (
        lambda d: f.deepracer_with(d, "dup.tar.gz", [Entry("model_metadata.json", b"{}")]),
        "'model_metadata.json' twice",
    ),
    "lidar-only": (
        lambda d: f.deepracer_tar_gz(
            d, "lidar.tar.gz", metadata=f.discrete_metadata(sensor=["LIDAR"])
        ),
        "uses only LIDAR and no camera",
    ),
    "camera-and-lidar": (
        lambda d: f.deepracer_tar_gz(
            d,
            "camlidar.tar.gz",
            metadata=f.discrete_metadata(sensor=["FRONT_FACING_CAMERA", "SECTOR_LIDAR"]),
        ),
        "needs LiDAR",
    ),
    "stereo": (
        lambda d: f.deepracer_tar_gz(
            d, "stereo.tar.gz", metadata=f.discrete_metadata(sensor=["STEREO_CAMERAS"])
        ),
        "needs stereo cameras",
    ),
    "stereo-and-lidar": (
        lambda d: f.deepracer_tar_gz(
            d, "stl.tar.gz", metadata=f.discrete_metadata(sensor=["STEREO_CAMERAS", "LIDAR"])
        ),
        "needs stereo cameras and LiDAR",
    ),
    "action-missing-speed": (
        lambda d: f.deepracer_tar_gz(
            d, "nospeed.tar.gz", metadata=f.discrete_metadata(action_space=[{"steering_angle": 0}])
        ),
        "action 0 has no 'speed'",
    ),
    "action-space-type-mismatch": (
        lambda d: f.deepracer_tar_gz(
            d, "mismatch.tar.gz", metadata=f.discrete_metadata(action_space_type="continuous")
        ),
        "says action_space_type is 'continuous' but the action space is discrete",
    ),
    "continuous-missing-range": (
        lambda d: f.deepracer_tar_gz(
            d,
            "norange.tar.gz",
            metadata=f.continuous_metadata(action_space={"steering_angle": {"low": -1}}),
        ),
        "needs 'steering_angle' with 'low' and 'high'",
    ),
    "unknown-algorithm": (
        lambda d: f.deepracer_tar_gz(
            d, "algo.tar.gz", metadata=f.discrete_metadata(training_algorithm="dqn")
        ),
        "training algorithm 'dqn' is not supported",
    ),
    "sac-discrete": (
        lambda d: f.deepracer_tar_gz(
            d, "sacd.tar.gz", metadata=f.discrete_metadata(training_algorithm="sac")
        ),
        "SAC models need a continuous action space",
    ),
    "big-pax-header": (f.big_pax_header, "oversized tar header"),
    "long-gnu-name": (f.long_gnu_name, "oversized tar header"),
    "truncated": (f.truncated_tar_gz, "is truncated"),
    "missing-gzip-trailer": (f.missing_gzip_trailer, "is truncated"),
    "not-gzip-inside": (
        lambda d: f.write_bytes(d, "fake.tar.gz", b"\x1f\x8b" + os.urandom(500)),
        "not a readable .tar.gz archive",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TARS))
def test_bad_deepracer_archives_are_rejected_with_a_reason(work: Path, case: str) -> None:
    builder, expected = BAD_TARS[case]
    path = builder(work)
    reason = reject(path)
    assert expected in reason, reason


def test_absolute_member_is_rejected_and_not_written(work: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside" / "evil.txt"
    path = f.deepracer_with(work, "abs.tar.gz", [Entry(str(target), b"owned")])
    reason = reject(path)
    assert "absolute path" in reason
    assert not target.exists() and not target.parent.exists()


def test_parent_member_is_not_written_anywhere(work: Path, tmp_path: Path) -> None:
    path = f.deepracer_with(work, "dotdot.tar.gz", [Entry("../../escaped.txt", b"e")])
    assert "points outside" in reject(path)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_too_many_members(work: Path) -> None:
    extra = [Entry(f"agent/checkpoint-{i}", b"x") for i in range(20)]
    path = f.deepracer_with(work, "many.tar.gz", extra)
    reason = reject(path, limits=InspectLimits(max_members=10))
    assert "more than 10 members" in reason
    # and the same file is fine with the default limit
    assert inspect_model_file(path, path.name).format == "deepracer"


def test_metadata_over_size_limit(work: Path) -> None:
    meta = f.discrete_metadata(padding="x" * 5000)
    path = f.deepracer_tar_gz(work, metadata=meta)
    reason = reject(path, limits=InspectLimits(max_metadata_bytes=4096))
    assert "model_metadata.json is larger than 4096 bytes" in reason


def test_total_uncompressed_limit(work: Path) -> None:
    """Random (incompressible) data: the ratio is fine, the total is not."""
    path = f.deepracer_tar_gz(work, pb=os.urandom(3 * 1024 * 1024))
    reason = reject(path, limits=InspectLimits(max_uncompressed_bytes=2 * 1024 * 1024))
    assert "unpacks to more than 2 MB" in reason


@pytest.mark.parametrize("bomb", ["bomb.tar.gz", "bomb-trailing.tar.gz"])
def test_gzip_bombs_are_rejected_early_without_memory(
    bomb_folder: Path, bomb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 GB of zeros: as one huge member, and hidden after a small valid tar
    (honest tar headers; only counting decompressed bytes catches it)."""
    monkeypatch.chdir(tmp_path)
    path = bomb_folder / bomb
    assert path.stat().st_size < 8 * 1024 * 1024
    before = tree(bomb_folder) | tree(tmp_path)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ModelRejected) as excinfo:
            inspect_model_file(path, "model.tar.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert "decompression bomb" in excinfo.value.reason
    assert peak < 16 * 1024 * 1024, f"peak Python allocations {peak} bytes"
    assert tree(bomb_folder) | tree(tmp_path) == before
    # With the ratio check out of the way, the total limit stops it too.
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model_file(
            path,
            "model.tar.gz",
            InspectLimits(max_ratio=1e9, max_uncompressed_bytes=64 * 1024 * 1024),
        )
    assert "unpacks to more than 64 MB" in excinfo.value.reason


# ------------------------------------------------------------------ names and magic


@pytest.mark.parametrize(
    ("builder", "filename", "expected"),
    [
        (f.deepracer_tar_gz, "model.h5", "named like a .h5 file but its content is a gzip archive"),
        (f.keras_h5, "model.tar.gz", "named like a .tar.gz file but its content is an HDF5 file"),
        (
            f.tflite_file,
            "model.keras",
            "named like a .keras file but its content is a TensorFlow Lite",
        ),
        (f.keras_zip, "model.tflite", "named like a .tflite file but its content is a zip archive"),
        (f.keras_zip, "model.zip", "It looks like a Keras 3 model: name it .keras"),
        (f.savedmodel_zip, "model.keras", "It looks like a zipped SavedModel: name it .zip"),
        (f.deepracer_tar_gz, "model.exe", "is not a supported model file"),
        (lambda d: f.random_file(d, 4096, "x.h5"), "x.h5", "not a recognised model format"),
    ],
)
def test_name_and_content_must_agree(
    work: Path, builder: BadBuilder, filename: str, expected: str
) -> None:
    assert expected in reject(builder(work), filename)


def test_empty_file(work: Path) -> None:
    path = work / "empty.tar.gz"
    path.write_bytes(b"")
    assert "is empty" in reject(path)


def test_damaged_tflite(work: Path) -> None:
    path = work / "bad.tflite"
    path.write_bytes(b"\xff\xff\xff\x7fTFL3" + bytes(16))
    assert "damaged" in reject(path)


# --------------------------------------------------------------------- bad zips


BAD_ZIPS: dict[str, tuple[BadBuilder, str, str]] = {
    "zip-symlink": (
        lambda d: f.zip_with(
            d,
            "sym.zip",
            [("m/saved_model.pb", b"x"), (f.zip_symlink_info("m/link"), b"/etc/passwd")],
        ),
        "sym.zip",
        "symbolic link",
    ),
    "zip-parent": (
        lambda d: f.zip_with(d, "dd.zip", [("m/saved_model.pb", b"x"), ("../evil", b"x")]),
        "dd.zip",
        "points outside the archive",
    ),
    "zip-absolute": (
        lambda d: f.zip_with(d, "abs.zip", [("m/saved_model.pb", b"x"), ("/tmp/evil", b"x")]),
        "abs.zip",
        "absolute path",
    ),
    "zip-encrypted": (
        f.zip_encrypted,
        "enc.zip",
        "encrypted member",
    ),
    "zip-two-savedmodels": (
        lambda d: f.zip_with(
            d, "two.zip", [("a/saved_model.pb", b"x"), ("b/saved_model.pb", b"y")]
        ),
        "two.zip",
        "more than one saved_model.pb",
    ),
    "zip-deep-savedmodel": (
        lambda d: f.zip_with(d, "deep.zip", [("a/b/saved_model.pb", b"x")]),
        "deep.zip",
        "nested too deep",
    ),
    "zip-no-savedmodel": (
        lambda d: f.zip_with(d, "none.zip", [("readme.txt", b"x")]),
        "none.zip",
        "contains no saved_model.pb",
    ),
    "keras-bad-json": (
        lambda d: f.keras_zip(d, "bad.keras", config=b"{not json"),
        "bad.keras",
        "config.json in the .keras file is not valid JSON",
    ),
    "keras-missing-metadata": (
        lambda d: f.zip_with(d, "nometa.keras", [("config.json", b"{}"), ("weights.h5", b"x")]),
        "nometa.keras",
        "needs config.json and metadata.json",
    ),
    "zip-truncated": (
        lambda d: f.write_bytes(d, "cut.zip", f.savedmodel_zip(d).read_bytes()[:300]),
        "cut.zip",
        "not a readable zip archive",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ZIPS))
def test_bad_zips_are_rejected_with_a_reason(work: Path, case: str) -> None:
    builder, filename, expected = BAD_ZIPS[case]
    assert expected in reject(builder(work), filename)


def test_zip_bomb_by_ratio_and_by_total(work: Path) -> None:
    path = f.zip_zero_bomb(work, 40 * 1024 * 1024)
    assert path.stat().st_size < 1024 * 1024
    reason = reject(path, "pilot.zip", InspectLimits(ratio_floor_bytes=4 * 1024 * 1024))
    assert "decompression bomb" in reason
    reason = reject(
        path, "pilot.zip", InspectLimits(max_ratio=1e9, max_uncompressed_bytes=32 * 1024 * 1024)
    )
    assert "unpacks to more than 32 MB" in reason


def test_zip_many_members(work: Path) -> None:
    """Refused from the end record's count, before zipfile reads the directory."""
    members = [("m/saved_model.pb", b"x")] + [(f"m/assets/{i}", b"a") for i in range(300)]
    path = f.zip_with(work, "many.zip", members)
    assert "301 members, more than the limit of 256" in reject(path)
    assert "301 members, more than the limit of 16" in reject(
        path, limits=InspectLimits(max_members=16)
    )


# -------------------------------------------------------------- metadata parser


def test_parse_metadata_accepts_numeric_strings_and_reports_bad_numbers() -> None:
    meta = f.discrete_metadata(action_space=[{"steering_angle": "-15", "speed": "1.2"}])
    parsed = parse_deepracer_metadata(json.dumps(meta).encode())
    assert parsed["action_space"] == [{"steering_angle": -15.0, "speed": 1.2}]
    bad = f.discrete_metadata(action_space=[{"steering_angle": True, "speed": 1}])
    with pytest.raises(ModelRejected, match="steering_angle must be a number"):
        parse_deepracer_metadata(json.dumps(bad).encode())
    with pytest.raises(ModelRejected, match="discrete action space is empty"):
        parse_deepracer_metadata(json.dumps(f.discrete_metadata(action_space=[])).encode())
    with pytest.raises(ModelRejected, match="has no 'action_space'"):
        parse_deepracer_metadata(b"{}")
