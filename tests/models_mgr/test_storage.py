"""Storage: the same tests for LocalStorage and for S3Storage on a real SeaweedFS."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from drem.models_mgr.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    RangeNotSatisfiable,
    S3Storage,
    Storage,
    StorageError,
    UploadTooLarge,
    storage_from_url,
    validate_key,
)

from .conftest import make_s3_storage
from .factories import PatternStream

MB = 1024 * 1024


def leftovers(storage: Storage, key: str) -> list[str]:
    """What a failed put may have left: temp files (local) or open multipart uploads (S3)."""
    if isinstance(storage, LocalStorage):
        return [p.name for p in (storage.root / LocalStorage.TMP_DIR).iterdir()]
    assert isinstance(storage, S3Storage)
    uploads = storage.client.list_multipart_uploads(
        Bucket=storage.bucket, Prefix=storage._object_key(key)
    )
    return [u["Key"] for u in uploads.get("Uploads", [])]


# ---------------------------------------------------------------- round trips


def test_put_read_size_exists_delete(storage: Storage) -> None:
    data = os.urandom(3 * MB + 123)
    result = storage.put("models/7/abc.tar.gz", io.BytesIO(data), max_size=10 * MB)
    assert result.key == "models/7/abc.tar.gz"
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert storage.exists("models/7/abc.tar.gz")
    assert storage.size("models/7/abc.tar.gz") == len(data)
    with storage.open("models/7/abc.tar.gz") as fh:
        assert fh.read() == data
    storage.delete("models/7/abc.tar.gz")
    assert not storage.exists("models/7/abc.tar.gz")
    storage.delete("models/7/abc.tar.gz")  # deleting twice is fine
    with pytest.raises(ObjectNotFound):
        storage.open("models/7/abc.tar.gz")
    with pytest.raises(ObjectNotFound):
        storage.size("models/7/abc.tar.gz")


def test_multipart_sized_put_and_replace(storage: Storage) -> None:
    """20 MiB: several S3 parts (8 MiB each) plus a short last one; then replaced."""
    size = 20 * MB + 5
    result = storage.put("big.bin", PatternStream(size))
    assert result.size == size
    assert result.sha256 == PatternStream.expected_digest(size)
    assert storage.size("big.bin") == size
    sha = hashlib.sha256()
    with storage.open("big.bin") as fh:
        while chunk := fh.read(MB):
            sha.update(chunk)
    assert sha.hexdigest() == result.sha256
    storage.put("big.bin", io.BytesIO(b"small"))
    with storage.open("big.bin") as fh:
        assert fh.read() == b"small"


def test_empty_object(storage: Storage) -> None:
    result = storage.put("empty", io.BytesIO(b""))
    assert (result.size, result.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert storage.exists("empty") and storage.size("empty") == 0


def test_ranges(storage: Storage) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    storage.put("r.bin", io.BytesIO(data))
    with storage.open_range("r.bin", 0, 10) as fh:
        assert fh.read() == data[0:10]
    with storage.open_range("r.bin", 1000, 5000) as fh:
        assert fh.read() == data[1000:5000]
    with storage.open_range("r.bin", 10000) as fh:
        assert fh.read() == data[10000:]
    with storage.open_range("r.bin", 10000, 99999) as fh:  # end clipped
        assert fh.read() == data[10000:]
    with storage.open_range("r.bin", 5, 5) as fh:
        assert fh.read() == b""
    with pytest.raises(RangeNotSatisfiable):
        storage.open_range("r.bin", 10240)
    with pytest.raises(ValueError):
        storage.open_range("r.bin", -1)
    with pytest.raises(ObjectNotFound):
        storage.open_range("missing.bin", 0, 10)


def test_local_path(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(MB + 7)
    storage.put("lp/model.h5", io.BytesIO(data))
    with storage.local_path("lp/model.h5") as path:
        assert Path(path).read_bytes() == data
        kept = Path(path)
    if isinstance(storage, S3Storage):
        assert not kept.exists(), "S3 download temp file must be removed"
    else:
        assert kept.exists()
    with pytest.raises(ObjectNotFound):
        with storage.local_path("lp/missing.h5"):
            pass


# ------------------------------------------------------------------- size limit


def test_limit_exact_and_one_over(storage: Storage) -> None:
    limit = 10 * MB
    assert storage.put("at-limit", PatternStream(limit), max_size=limit).size == limit
    with pytest.raises(UploadTooLarge) as excinfo:
        storage.put("over-limit", PatternStream(limit + 1), max_size=limit)
    assert excinfo.value.limit == limit
    assert not storage.exists("over-limit")
    assert leftovers(storage, "over-limit") == []


def test_600mb_stream_against_500mb_limit(storage: Storage) -> None:
    """Stops during streaming, leaves nothing, and never holds the stream in memory.
    An older object under the same key survives the failed replacement."""
    storage.put("models/1/model.tar.gz", io.BytesIO(b"previous version"))
    stream = PatternStream(600 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(UploadTooLarge) as excinfo:
            storage.put("models/1/model.tar.gz", stream, max_size=500 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "500 MB" in str(excinfo.value)
    assert 500 * MB < stream.pos <= 500 * MB + 16 * MB, "stopped right after the limit"
    assert peak < 48 * MB, f"peak Python allocations {peak / MB:.1f} MiB"
    assert leftovers(storage, "models/1/model.tar.gz") == []
    with storage.open("models/1/model.tar.gz") as fh:
        assert fh.read() == b"previous version"


def test_failing_source_leaves_nothing(storage: Storage) -> None:
    def explode(pos: int) -> None:
        if pos >= 9 * MB:
            raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        storage.put("broken", PatternStream(30 * MB, on_read=explode))
    assert not storage.exists("broken")
    assert leftovers(storage, "broken") == []


def test_object_appears_only_when_complete(storage: Storage) -> None:
    """Readers see the old object or nothing while a put is streaming."""
    storage.put("atomic/old", io.BytesIO(b"old"))
    seen: list[tuple[bool, bytes]] = []

    def look(pos: int) -> None:
        if pos == 12 * MB and not seen:
            with storage.open("atomic/old") as fh:
                seen.append((storage.exists("atomic/new"), fh.read()))

    storage.put("atomic/new", PatternStream(16 * MB, on_read=look))
    assert seen == [(False, b"old")]
    assert storage.size("atomic/new") == 16 * MB


# ---------------------------------------------------------------------- keys

BAD_KEYS = [
    "",
    "../escape.txt",
    "a/../../escape.txt",
    "models/../../../etc/passwd",
    "/etc/passwd",
    "a//b",
    "a/./b",
    ".",
    "..",
    "a\\..\\b",
    "nul\x00byte",
    "sp ace",
    "caf\u00e9",
    "x" * 600,
    "trailing/",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused(storage: Storage, key: str, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    with pytest.raises(InvalidKey):
        storage.put(key, io.BytesIO(b"escape attempt"))
    for op in (storage.open, storage.size, storage.exists, storage.delete):
        with pytest.raises(InvalidKey):
            op(key)
    with pytest.raises(InvalidKey):
        storage.open_range(key, 0, 1)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert not (tmp_path / "escape.txt").exists()
    assert not list(tmp_path.rglob("escape.txt"))


def test_validate_key_accepts_normal_keys() -> None:
    for key in ("a", "models/12/3f9c.tar.gz", "u-1/m_2/v.3.keras", "A/B/C"):
        assert validate_key(key) == key


def test_local_reserved_tmp_and_symlink_escape(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(InvalidKey):
        storage.put(".tmp/x", io.BytesIO(b"x"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        storage.put("link/evil.txt", io.BytesIO(b"x"))
    assert list(outside.iterdir()) == []


def test_local_remove_stale_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    tmp = storage.root / LocalStorage.TMP_DIR
    old = tmp / "put-crashed.part"
    old.write_bytes(b"half an upload")
    os.utime(old, (1_000_000, 1_000_000))
    fresh = tmp / "put-in-progress.part"
    fresh.write_bytes(b"uploading")
    assert storage.remove_stale_temp_files(max_age_s=3600) == 1
    assert not old.exists() and fresh.exists()


def test_local_delete_tidies_empty_folders(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.put("a/b/c.bin", io.BytesIO(b"x"))
    storage.delete("a/b/c.bin")
    assert sorted(p.name for p in storage.root.iterdir()) == [".tmp"]


def test_concurrent_puts_same_key(storage: Storage) -> None:
    payloads = [bytes([i]) * (2 * MB) for i in range(4)]
    errors: list[BaseException] = []

    def put(data: bytes) -> None:
        try:
            storage.put("race/key", io.BytesIO(data))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with storage.open("race/key") as fh:
        assert fh.read() in payloads  # one whole payload, never a mix


# ------------------------------------------------------------------ S3 specifics


@pytest.mark.parametrize(
    "override",
    [
        {"aws_secret_access_key": "wrong-secret-0000000000000000000000000"},
        {"aws_access_key_id": "NOSUCHKEY0000000000"},
    ],
)
def test_s3_wrong_keys_are_refused(seaweedfs: dict[str, str], override: dict[str, str]) -> None:
    """The server checks signatures: this is a real S3, not a fake that accepts anything."""
    good = make_s3_storage(seaweedfs)
    good.put("probe", io.BytesIO(b"secret data"))
    bad = make_s3_storage(seaweedfs, prefix=good.prefix, **override)
    with pytest.raises(StorageError, match="refused"):
        bad.put("written-with-bad-keys", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="refused"):
        with bad.open("probe") as fh:
            fh.read()
    with pytest.raises(StorageError, match="refused"):
        bad.size("probe")
    assert not good.exists("written-with-bad-keys")
    assert good.size("probe") == len(b"secret data")


def test_s3_from_url_and_environment(
    seaweedfs: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.setenv(name, seaweedfs[name])
    storage = storage_from_url("s3://drem-test/from-url/models", tmp_path)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("drem-test", "from-url/models")
    storage.put("k.bin", io.BytesIO(b"via env"))
    # the prefix is really applied in the bucket
    head = storage.client.head_object(Bucket="drem-test", Key="from-url/models/k.bin")
    assert head["ContentLength"] == len(b"via env")
    storage.delete("k.bin")


def test_s3_ensure_bucket(seaweedfs: dict[str, str]) -> None:
    storage = make_s3_storage(seaweedfs)
    fresh = S3Storage("drem-fresh-bucket", "", client=storage.client)
    fresh.ensure_bucket()
    fresh.ensure_bucket()  # idempotent
    fresh.put("x", io.BytesIO(b"1"))
    assert fresh.exists("x")


def test_seaweedfs_script_is_idempotent(seaweedfs: dict[str, str]) -> None:
    import subprocess

    from .conftest import SEAWEEDFS_SH

    pid = Path(seaweedfs["DIR"], "weed.pid").read_text().strip()
    env = {**os.environ, **{k: v for k, v in seaweedfs.items() if k.startswith("SEAWEEDFS_")}}
    out = subprocess.run(
        [str(SEAWEEDFS_SH), "start", seaweedfs["DIR"]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert f"AWS_ACCESS_KEY_ID={seaweedfs['AWS_ACCESS_KEY_ID']}" in out.stdout
    assert Path(seaweedfs["DIR"], "weed.pid").read_text().strip() == pid
    status = subprocess.run(
        [str(SEAWEEDFS_SH), "status", seaweedfs["DIR"]], env=env, capture_output=True, timeout=30
    )
    assert status.returncode == 0
    assert oct(Path(seaweedfs["DIR"], "s3.json").stat().st_mode & 0o777) == "0o600"


# ----------------------------------------------------------------- from URL


def test_storage_from_url_local(tmp_path: Path) -> None:
    default = storage_from_url("", tmp_path)
    assert isinstance(default, LocalStorage) and default.root == (tmp_path / "models").resolve()
    absolute = storage_from_url(f"file://{tmp_path}/elsewhere", tmp_path / "inst")
    assert (
        isinstance(absolute, LocalStorage) and absolute.root == (tmp_path / "elsewhere").resolve()
    )
    relative = storage_from_url("file://store/models", tmp_path)
    assert isinstance(relative, LocalStorage)
    assert relative.root == (tmp_path / "store" / "models").resolve()
    with pytest.raises(ValueError):
        storage_from_url("ftp://host/x", tmp_path)
    with pytest.raises(ValueError):
        storage_from_url("s3:///prefix-only", tmp_path)
