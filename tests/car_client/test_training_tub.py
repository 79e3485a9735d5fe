"""Donkey Car tub v2: what the project writes reads back, and Donkey's own layout reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from car_client.training.tub import (
    Tub,
    TubError,
    TubWriter,
    image_file_name,
    load_driving_data,
)


def _frame(i: int) -> np.ndarray:
    """A smooth RGB test frame (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:120, 0:160]
    img = np.stack([(x + 3 * i) % 256, (y * 2 + i) % 256, np.full_like(x, 40 + i)], axis=-1)
    return img.astype(np.uint8)


def test_written_tub_reads_back_identically(tmp_path):
    path = tmp_path / "tub"
    meta = {"track": "reinvent_base", "max_speed_mps": 4.0}
    records = [{"cam/image_array": _frame(i), "user/angle": (i - 5) / 5.0,
                "user/throttle": 0.05 * i, "user/mode": "user"} for i in range(11)]
    with TubWriter(path, metadata=meta, max_catalog_len=4) as tub:
        for i, rec in enumerate(records):
            assert tub.write_record(rec, timestamp_ms=1_700_000_000_000 + 66 * i) == i
        tub.delete_records([2, 9])
        assert len(tub) == 9

    read = Tub(path)
    assert read.inputs == ["cam/image_array", "user/angle", "user/throttle", "user/mode"]
    assert read.types == ["image_array", "float", "float", "str"]
    assert read.metadata == meta
    assert read.deleted_indexes == {2, 9}
    assert read.catalog_paths == ["catalog_0.catalog", "catalog_1.catalog", "catalog_2.catalog"]
    assert [r["_index"] for r in read] == [0, 1, 3, 4, 5, 6, 7, 8, 10]
    for rec in read:
        i = rec["_index"]
        assert rec["user/angle"] == records[i]["user/angle"]
        assert rec["user/throttle"] == records[i]["user/throttle"]
        assert rec["user/mode"] == "user"
        assert rec["_timestamp_ms"] == 1_700_000_000_000 + 66 * i
        assert rec["_session_id"].endswith("_0")
        assert rec["cam/image_array"] == f"{i}_cam_image_array_.jpg"
        img = read.image(rec)
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        assert np.abs(img.astype(int) - records[i]["cam/image_array"]).mean() < 3.0


def test_files_follow_donkeys_layout(tmp_path):
    path = tmp_path / "tub"
    with TubWriter(path, max_catalog_len=3) as tub:
        for i in range(5):
            tub.write_record({"cam/image_array": _frame(i), "user/angle": 0.1,
                              "user/throttle": 0.2, "user/mode": "user"})
    lines = (path / "manifest.json").read_text().split("\n")
    assert lines[-1] == "" and len(lines) == 6  # five newline-terminated JSON lines
    inputs, types, user_meta, manifest_meta, catalogs = (json.loads(x) for x in lines[:5])
    assert inputs[0] == "cam/image_array" and types[0] == "image_array"
    assert user_meta == {}
    assert manifest_meta["sessions"]["last_id"] == 0
    assert manifest_meta["sessions"]["all_full_ids"] == [manifest_meta["sessions"]["last_full_id"]]
    assert catalogs == {"paths": ["catalog_0.catalog", "catalog_1.catalog"],
                        "current_index": 5, "max_len": 3, "deleted_indexes": []}
    for n, start in ((0, 0), (1, 3)):
        cat_lines = (path / f"catalog_{n}.catalog").read_text().splitlines(keepends=True)
        cat_meta = json.loads((path / f"catalog_{n}.catalog_manifest").read_text())
        assert cat_meta["path"] == f"catalog_{n}.catalog_manifest"
        assert cat_meta["start_index"] == start
        assert cat_meta["line_lengths"] == [len(x) for x in cat_lines]
        for line in cat_lines:  # keys sorted, as Donkey writes them
            rec = json.loads(line)
            assert list(rec) == sorted(rec)
    assert sorted(p.name for p in (path / "images").iterdir()) == sorted(
        image_file_name(i, "cam/image_array") for i in range(5))


def test_reopening_continues_with_a_new_session(tmp_path):
    path = tmp_path / "tub"
    with TubWriter(path, max_catalog_len=4) as tub:
        for _ in range(3):
            tub.write_record({"user/angle": 0.0, "user/throttle": 0.1, "user/mode": "user"})
    with TubWriter(path, max_catalog_len=4) as tub:
        assert tub.write_record({"user/angle": 0.5, "user/throttle": 0.2,
                                 "user/mode": "user"}) == 3
        tub.write_record({"user/angle": 0.6, "user/throttle": 0.3, "user/mode": "user"})
    read = Tub(path)
    assert [r["_index"] for r in read] == [0, 1, 2, 3, 4]
    sessions = [r["_session_id"].rsplit("_", 1)[1] for r in read]
    assert sessions == ["0", "0", "0", "1", "1"]
    assert read.catalog_paths == ["catalog_0.catalog", "catalog_1.catalog"]
    assert read.manifest_metadata["sessions"]["last_id"] == 1
    with pytest.raises(TubError, match="existing tub"):
        TubWriter(path, inputs=("user/angle",), types=("float",))


def _donkey_line(obj) -> str:
    return json.dumps(obj) + "\n"


def test_a_tub_in_donkeys_own_layout_reads(tmp_path):
    """Hand-built from the format Donkey Car documents: older Donkey versions end lines
    with CRLF, catalogs hold ``max_len`` records, deleted indexes stay in the catalogs,
    and a broken line is skipped."""
    path = tmp_path / "donkey_tub"
    (path / "images").mkdir(parents=True)
    records = []
    for i in range(5):
        name = f"{i}_cam_image_array_.jpg"
        Image.fromarray(_frame(i * 10)).save(path / "images" / name)
        records.append({"_index": i, "_session_id": "21-03-14_0",
                        "_timestamp_ms": 1615700000000 + 50 * i, "cam/image_array": name,
                        "user/angle": round(-0.5 + 0.25 * i, 3), "user/mode": "user",
                        "user/throttle": 0.3})
    with open(path / "manifest.json", "w", newline="") as f:
        for obj in (["cam/image_array", "user/angle", "user/throttle", "user/mode"],
                    ["image_array", "float", "float", "str"], {},
                    {"created_at": 1615700000.1,
                     "sessions": {"all_full_ids": ["21-03-14_0"], "last_id": 0,
                                  "last_full_id": "21-03-14_0"}},
                    {"paths": ["catalog_0.catalog", "catalog_1.catalog"], "current_index": 6,
                     "max_len": 3, "deleted_indexes": [1]}):
            f.write(json.dumps(obj) + "\r\n")
    chunks = [records[:3], records[3:] + [None]]  # index 5 is a broken line
    for n, chunk in enumerate(chunks):
        lines = [json.dumps(r, sort_keys=True) + "\r\n" if r else "{broken\r\n" for r in chunk]
        with open(path / f"catalog_{n}.catalog", "w", newline="") as f:
            f.writelines(lines)
        with open(path / f"catalog_{n}.catalog_manifest", "w", newline="") as f:
            f.write(json.dumps({"created_at": 1615700000.2, "line_lengths": [len(x) for x in lines],
                                "path": f"catalog_{n}.catalog_manifest",
                                "start_index": 3 * n}) + "\r\n")

    tub = Tub(path)
    assert [r["_index"] for r in tub] == [0, 2, 3, 4]
    assert tub.skipped_lines == 1
    assert [r["user/angle"] for r in tub] == [-0.5, 0.0, 0.25, 0.5]
    assert tub.manifest_metadata["sessions"]["last_full_id"] == "21-03-14_0"
    img = tub.image(tub.records[1])
    assert np.abs(img.astype(int) - _frame(20)).mean() < 3.0

    images, angles, throttles = load_driving_data([path])
    assert images.shape == (4, 120, 160, 3) and images.dtype == np.uint8
    np.testing.assert_allclose(angles, [-0.5, 0.0, 0.25, 0.5])
    np.testing.assert_allclose(throttles, 0.3)

    # Continuing Donkey's tub appends to its last catalog with the next index.
    with TubWriter(path, max_catalog_len=3) as writer:
        assert writer.write_record({"user/angle": 0.1, "user/throttle": 0.1,
                                    "user/mode": "user"}) == 6
    assert Tub(path).catalog_paths[-1] == "catalog_2.catalog"


def test_bad_tubs_raise_clear_errors(tmp_path):
    with pytest.raises(TubError, match="no manifest.json"):
        Tub(tmp_path)
    (tmp_path / "manifest.json").write_text("[]\n[]\n")
    with pytest.raises(TubError, match="5 JSON lines"):
        Tub(tmp_path)
    with pytest.raises(TubError, match="unsupported input types"):
        TubWriter(tmp_path / "x", inputs=("a",), types=("gray16_array",))
    with pytest.raises(TubError, match="image must be"):
        with TubWriter(tmp_path / "y") as tub:
            tub.write_record({"cam/image_array": np.zeros((4, 4, 2), np.uint8)})
    with TubWriter(tmp_path / "z") as tub:
        tub.write_record({"user/angle": 0.0, "user/throttle": 0.0})
    with pytest.raises(TubError, match="no usable records"):
        load_driving_data([tmp_path / "z"])
