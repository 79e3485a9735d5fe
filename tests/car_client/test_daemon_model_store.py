"""Model downloads against a real local HTTP server: resume, restart, checksum, index."""

import hashlib
import os
import threading

import pytest

from car_client.daemon.model_store import DownloadError, ModelStore
from tests.car_client.peers import ModelFileServer

BLOB = os.urandom(700_000)
SHA = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def files():
    server = ModelFileServer({"/m/12": BLOB}).start()
    yield server
    server.stop()


def test_download_resumes_with_range_after_a_cut_off(tmp_path, files):
    files.cut_after, files.cuts = 250_000, 2  # two responses break mid-body
    store = ModelStore(tmp_path / "models")
    seen = []
    spec = store.load("12", files.url + "/m/12?sig=abc", SHA, name="fast.tar.gz",
                      model_format="deepracer", size=len(BLOB), progress=seen.append)
    assert open(spec.path, "rb").read() == BLOB
    assert spec.path.endswith("fast.tar.gz") and spec.model_format == "deepracer"
    # first the whole file, then two resumes from what the part file held after each cut
    # (the bytes of a chunk torn by the cut are not kept, so offsets are <= the cut)
    assert [(p, s) for p, _, s in files.requests] == [("/m/12", 200), ("/m/12", 206),
                                                      ("/m/12", 206)]
    assert files.requests[0][1] is None
    first, second = (int(r[1][6:-1]) for r in files.requests[1:])
    assert 0 < first <= 250_000 and first < second <= first + 250_000
    assert seen[-1] == 1.0
    assert not list((tmp_path / "models" / ".partial").iterdir())
    # kept in the index across a new store instance
    again = ModelStore(tmp_path / "models")
    assert again.list() == [{"model_id": "12", "sha256": SHA, "name": "fast.tar.gz"}]
    assert again.get("12").path == spec.path


def test_server_ignoring_range_restarts_the_download_cleanly(tmp_path, files):
    files.cut_after, files.cuts, files.ignore_range = 300_000, 1, True
    store = ModelStore(tmp_path / "models")
    spec = store.load("12", files.url + "/m/12", SHA, name="m.tar.gz", size=len(BLOB))
    assert open(spec.path, "rb").read() == BLOB  # not 300 000 bytes twice
    assert [r[2] for r in files.requests] == [200, 200]
    assert 0 < int(files.requests[1][1][6:-1]) <= 300_000  # it asked to resume; got it all


def test_checksum_mismatch_fails_and_removes_the_partial_file(tmp_path, files):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(DownloadError) as info:
        store.load("12", files.url + "/m/12", "0" * 64, name="m.tar.gz", size=len(BLOB))
    assert info.value.reason == "checksum mismatch"
    assert not list((tmp_path / "models" / ".partial").iterdir())
    assert store.ids() == []


def test_refused_url_and_gone_model_give_clear_reasons(tmp_path, files):
    store = ModelStore(tmp_path / "models")
    files.status = 403
    with pytest.raises(DownloadError, match="HTTP 403 .expired or bad signature"):
        store.load("12", files.url + "/m/12", SHA)
    files.status = None
    with pytest.raises(DownloadError, match="HTTP 404"):
        store.load("13", files.url + "/m/13", SHA)


def test_cancel_keeps_the_part_for_a_later_resume(tmp_path, files):
    store = ModelStore(tmp_path / "models")
    cancel = threading.Event()

    def progress(fraction):
        if fraction > 0.2:
            cancel.set()

    with pytest.raises(DownloadError, match="cancelled"):
        store.load("12", files.url + "/m/12", SHA, size=len(BLOB), progress=progress,
                   cancel=cancel)
    part = tmp_path / "models" / ".partial" / f"{SHA}.part"
    have = part.stat().st_size
    assert 0 < have < len(BLOB)
    spec = store.load("12", files.url + "/m/12", SHA, size=len(BLOB))
    assert files.requests[-1] == ("/m/12", f"bytes={have}-", 206)
    assert open(spec.path, "rb").read() == BLOB


def test_several_models_are_kept_and_deleted(tmp_path, files):
    other = b"second model" * 1000
    files.files["/m/13"] = other
    store = ModelStore(tmp_path / "models")
    store.load("12", files.url + "/m/12", SHA, name="a.tar.gz")
    store.load("13", files.url + "/m/13", hashlib.sha256(other).hexdigest(), name="b.tflite")
    assert store.ids() == ["12", "13"]
    n = len(files.requests)
    store.load("12", files.url + "/m/12", SHA, name="a.tar.gz")  # already there: no download
    assert len(files.requests) == n
    assert store.delete(["12", "77"]) == ["12"]
    assert store.ids() == ["13"] and not (tmp_path / "models" / "12").exists()
    assert store.delete([]) == ["13"]
    assert ModelStore(tmp_path / "models").ids() == []
