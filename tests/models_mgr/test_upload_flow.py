"""Upload -> scan (real clamd) -> inspect -> available / quarantined / invalid, through the API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.models_mgr import factories as f


def _upload(client, headers, path: Path, name: str | None = None, **params):
    query = {"filename": name or path.name} | params
    return client.post(
        "/api/models",
        query_string=query,
        data=path.read_bytes(),
        headers=headers | {"Content-Type": "application/octet-stream"},
    )


def _run_jobs(app) -> None:
    from drem.models_mgr.scan_jobs import run_once

    with app.app_context():
        run_once()


def _model(client, headers, model_id):
    return client.get(f"/api/models/{model_id}", headers=headers).get_json()


def test_deepracer_upload_becomes_available_and_downloads(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    path = f.deepracer_tar_gz(tmp_path)
    resp = _upload(client, racer_h, path)
    assert resp.status_code == 201, resp.get_json()
    model = resp.get_json()
    assert model["status"] == "uploaded" and model["size"] == path.stat().st_size
    _run_jobs(models_app)
    model = _model(client, racer_h, model["id"])
    assert model["status"] == "available", model
    assert model["format"] == "deepracer" and model["sensors"] == ["FRONT_FACING_CAMERA"]
    assert model["action_space_type"] == "discrete" and model["model_pb_sha256"]
    assert model["expires_at"] > model["uploaded_at"]
    data = client.get(f"/api/models/{model['id']}/download", headers=racer_h)
    assert data.status_code == 200 and data.data == path.read_bytes()
    assert data.headers["X-Checksum-Sha256"] == model["sha256"]
    part = client.get(
        f"/api/models/{model['id']}/download", headers=racer_h | {"Range": "bytes=10-"}
    )
    assert part.status_code == 206 and part.data == path.read_bytes()[10:]
    past = client.get(
        f"/api/models/{model['id']}/download",
        headers=racer_h | {"Range": f"bytes={model['size']}-"},
    )
    assert past.status_code == 416


@pytest.mark.parametrize(
    "builder,name",
    [
        (f.keras_h5, "pilot.h5"),
        (f.tflite_file, "pilot.tflite"),
        (f.savedmodel_zip, "pilot.zip"),
    ],
)
def test_donkey_formats(models_app, client, factory, tmp_path, builder, name):
    racer_h = factory.headers("racer")
    resp = _upload(client, racer_h, builder(tmp_path), name)
    _run_jobs(models_app)
    model = _model(client, racer_h, resp.get_json()["id"])
    assert model["status"] == "available", model
    assert model["format"] in ("keras", "tflite", "savedmodel")


@pytest.mark.parametrize(
    "builder,name",
    [
        (f.eicar_file, "model.tar.gz"),
        (f.eicar_in_tar_gz, "infected.tar.gz"),
        (f.eicar_in_zip, "infected.zip"),
    ],
)
def test_eicar_is_quarantined_not_lost(models_app, client, factory, tmp_path, builder, name):
    racer_h, admin_h, operator_h = (
        factory.headers("racer"),
        factory.headers("admin"),
        factory.headers("operator"),
    )
    path = builder(tmp_path)
    model_id = _upload(client, racer_h, path, name).get_json()["id"]
    _run_jobs(models_app)
    model = _model(client, racer_h, model_id)
    assert model["status"] == "quarantined" and "eicar" in model["virus_signature"].lower(), model
    assert "virus was found" in model["status_reason"]
    for headers in (racer_h, operator_h):
        resp = client.get(f"/api/models/{model_id}/download", headers=headers)
        assert resp.status_code == 403 and "quarantined" in resp.get_json()["error"]
    assert client.delete(f"/api/models/{model_id}", headers=racer_h).status_code == 403
    resp = client.get(f"/api/models/{model_id}/download", headers=admin_h)
    assert resp.status_code == 200 and resp.data == path.read_bytes()
    storage = models_app.extensions["drem_storage"]
    assert list((storage.root / "quarantine").rglob("*")) and not list(
        (storage.root / "models").rglob("*.*")
    )
    assert client.delete(f"/api/models/{model_id}", headers=admin_h).status_code == 204
    assert client.get(f"/api/models/{model_id}", headers=admin_h).status_code == 404


def test_unsupported_eicar_com_is_refused_up_front(models_app, client, factory, tmp_path):
    resp = _upload(client, factory.headers("racer"), f.eicar_file(tmp_path))
    assert resp.status_code == 400 and "unsupported file type" in resp.get_json()["error"]


@pytest.mark.parametrize(
    "builder,reason",
    [
        (lambda d: f.deepracer_with(d, "dotdot.tar.gz", [f.Entry("../evil.txt", b"x")]), ".."),
        (lambda d: f.deepracer_with(d, "abs.tar.gz", [f.Entry("/etc/evil", b"x")]), "absolute"),
        (
            lambda d: f.deepracer_with(
                d,
                "link.tar.gz",
                [f.Entry("agent/link", kind=f.tarfile.SYMTYPE, linkname="/etc/passwd")],
            ),
            "link",
        ),
        (f.two_model_pb, "model.pb"),
        (f.without_metadata, "model_metadata.json"),
        (f.invalid_json_metadata, "JSON"),
        (f.truncated_tar_gz, "truncated"),
    ],
)
def test_bad_archives_become_invalid_with_reason(
    models_app, client, factory, tmp_path, builder, reason
):
    racer_h = factory.headers("racer")
    path = builder(tmp_path)
    model_id = _upload(
        client, racer_h, path, path.name if path.name.endswith(".tar.gz") else "x.tar.gz"
    ).get_json()["id"]
    _run_jobs(models_app)
    model = _model(client, racer_h, model_id)
    assert model["status"] == "invalid" and reason.lower() in model["status_reason"].lower(), model
    # the racer gets their file back; nothing was written outside the storage folder
    assert client.get(f"/api/models/{model_id}/download", headers=racer_h).data == path.read_bytes()
    assert not (tmp_path / "evil.txt").exists() and not Path("/etc/evil").exists()


def test_gzip_bomb_is_invalid(models_app, client, factory, bomb_folder):
    racer_h = factory.headers("racer")
    bomb = next(bomb_folder.glob("*.tar.gz"))
    model_id = _upload(client, racer_h, bomb, "bomb.tar.gz").get_json()["id"]
    _run_jobs(models_app)
    model = _model(client, racer_h, model_id)
    assert model["status"] == "invalid" and "unpack" in model["status_reason"].lower(), model


def test_clamd_down_keeps_model_scanning_then_retries(
    models_app, client, factory, tmp_path, clamd_url
):
    from drem.models_mgr.models import RacerModel
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    racer_h = factory.headers("racer")
    models_app.config["CLAMD_URL"] = f"unix://{tmp_path}/no-clamd.sock"
    model_id = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path)).get_json()["id"]
    _run_jobs(models_app)
    model = _model(client, racer_h, model_id)
    assert model["status"] == "scanning" and model["scan_attempts"] == 1
    assert "waiting for the virus scanner" in model["status_reason"]
    assert client.get(f"/api/models/{model_id}/download", headers=racer_h).status_code == 403
    _run_jobs(models_app)  # not due yet: backoff holds
    assert _model(client, racer_h, model_id)["scan_attempts"] == 1
    models_app.config["CLAMD_URL"] = clamd_url  # clamd is back (as after an app restart)
    with models_app.app_context():
        db.session.get(RacerModel, model_id).next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    _run_jobs(models_app)
    assert _model(client, racer_h, model_id)["status"] == "available"


def test_size_limit_and_names(models_app, client, factory, tmp_path):
    racer_h = factory.headers("racer")
    models_app.config["UPLOAD_LIMIT_BYTES"] = 1024 * 1024
    big = f.random_file(tmp_path, 2 * 1024 * 1024)
    resp = _upload(client, racer_h, big, "big.tar.gz")
    assert resp.status_code == 413 and "limit" in resp.get_json()["error"]
    # a chunked body with no Content-Length is cut off while streaming
    resp = client.post(
        "/api/models",
        query_string={"filename": "big.tar.gz"},
        input_stream=open(big, "rb"),
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
        headers=racer_h
        | {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
    )
    assert resp.status_code == 413
    storage_root = models_app.extensions["drem_storage"].root
    assert [p for p in storage_root.rglob("*") if p.is_file()] == []
    resp = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path), "../../Mein Modell ü 🚗.tar.gz")
    assert resp.status_code == 201 and resp.get_json()["filename"] == "Mein Modell ü 🚗.tar.gz"
    disp = client.get(f"/api/models/{resp.get_json()['id']}/download", headers=racer_h)
    assert disp.status_code == 403  # not scanned yet


def test_access_rules(models_app, client, factory, tmp_path):
    racer_h, other_h, op_h = (
        factory.headers("racer"),
        factory.headers("racer"),
        factory.headers("operator"),
    )
    assert _upload(client, {}, f.deepracer_tar_gz(tmp_path)).status_code == 401
    model_id = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path)).get_json()["id"]
    _run_jobs(models_app)
    assert client.get(f"/api/models/{model_id}", headers=other_h).status_code == 404
    assert client.get(f"/api/models/{model_id}/download", headers=other_h).status_code == 404
    assert client.delete(f"/api/models/{model_id}", headers=other_h).status_code == 404
    assert client.get("/api/models", headers=other_h).get_json()["models"] == []
    listed = client.get("/api/models?status=available", headers=op_h).get_json()
    assert [m["id"] for m in listed["models"]] == [model_id] and listed["total"] == 1
    assert client.get(f"/api/models/{model_id}/download", headers=op_h).status_code == 200
    assert client.get("/api/models", headers=factory.headers("commentator")).status_code == 403
    assert client.delete(f"/api/models/{model_id}", headers=racer_h).status_code == 204
    assert client.get("/api/models", headers=racer_h).get_json()["models"] == []


def test_retention_deletes_old_models(models_app, client, factory, tmp_path):
    from drem.models_mgr.models import RacerModel
    from drem.models_mgr.scan_jobs import run_retention
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    racer_h = factory.headers("racer")
    model_id = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path)).get_json()["id"]
    keep_id = _upload(client, racer_h, f.deepracer_tar_gz(tmp_path, "keep.tar.gz")).get_json()["id"]
    with models_app.app_context():
        db.session.get(RacerModel, model_id).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert run_retention() == 1
        key = db.session.get(RacerModel, model_id).storage_key
    assert not models_app.extensions["drem_storage"].exists(key)
    ids = [m["id"] for m in client.get("/api/models", headers=racer_h).get_json()["models"]]
    assert ids == [keep_id]


def test_racer_upload_quota(models_app, client, factory, tmp_path):
    """Issue 18: no per-racer quota let one racer fill the disk. Over the quota an upload is
    refused (Content-Length or chunked), nothing is kept, and deleting frees room again."""
    racer_h = factory.headers("racer")
    models_app.config["UPLOAD_QUOTA_BYTES"] = 3 * 1024 * 1024
    first = f.random_file(tmp_path, 2 * 1024 * 1024, "first.bin")
    resp = _upload(client, racer_h, first, "first.tar.gz")
    assert resp.status_code == 201
    first_id = resp.get_json()["id"]
    second = f.random_file(tmp_path, 2 * 1024 * 1024, "second.bin")
    resp = _upload(client, racer_h, second, "second.tar.gz")
    assert resp.status_code == 413 and "quota" in resp.get_json()["error"]
    resp = client.post("/api/models", query_string={"filename": "second.tar.gz"}, input_stream=open(second, "rb"),
                       environ_overrides={"wsgi.input_terminated": True},
                       headers=racer_h | {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    assert resp.status_code == 413 and "quota" in resp.get_json()["error"]
    storage_root = models_app.extensions["drem_storage"].root
    assert len([p for p in storage_root.rglob("*") if p.is_file()]) == 1
    assert client.get("/api/models", headers=racer_h).get_json()["total"] == 1
    assert _upload(client, factory.headers("operator"), second, "staff.tar.gz").status_code == 201  # staff: no quota
    assert client.delete(f"/api/models/{first_id}", headers=racer_h).status_code == 204
    assert _upload(client, racer_h, second, "second.tar.gz").status_code == 201
