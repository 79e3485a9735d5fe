"""Fixtures for the models_mgr tests: S3 storage on the session's SeaweedFS, the
storage parametrisation, and the gzip bombs.

The session's real clamd (``clamd_rundir``, ``clamd_url``) and SeaweedFS
(``seaweedfs``) fixtures live in ``tests/conftest.py`` so every test folder can use
them; ``REPO``, ``CLAMD_SH`` and ``SEAWEEDFS_SH`` are re-exported here for the tests
that import them from this module.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from drem.models_mgr.storage import LocalStorage, S3Storage, Storage
from tests.conftest import CLAMD_SH, REPO, SEAWEEDFS_SH

from . import factories

__all__ = ["CLAMD_SH", "REPO", "SEAWEEDFS_SH", "make_s3_storage"]


def make_s3_storage(
    seaweedfs: dict[str, str], prefix: str | None = None, **overrides: str
) -> S3Storage:
    """An S3Storage on the session's SeaweedFS, bucket ``drem-test``, unique prefix."""
    kwargs = {
        "endpoint_url": seaweedfs["AWS_ENDPOINT_URL"],
        "region_name": seaweedfs["AWS_DEFAULT_REGION"],
        "aws_access_key_id": seaweedfs["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": seaweedfs["AWS_SECRET_ACCESS_KEY"],
    }
    kwargs.update(overrides)
    return S3Storage(
        "drem-test", prefix if prefix is not None else f"t-{uuid.uuid4().hex[:12]}", **kwargs
    )


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each storage test runs twice: LocalStorage in tmp_path/root, S3Storage on SeaweedFS."""
    if request.param == "local":
        return LocalStorage(tmp_path / "root")
    seaweedfs = request.getfixturevalue("seaweedfs")
    return make_s3_storage(seaweedfs, tmp_dir=str(tmp_path))


@pytest.fixture(scope="session")
def bomb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session: the two 1 GB gzip bombs (a few MB on disk)."""
    folder = tmp_path_factory.mktemp("bombs")
    factories.gzip_bomb_member(folder)
    factories.gzip_bomb_after_tar(folder)
    return folder


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for model files; the current directory is a sibling 'cwd' folder,
    so a relative extraction would show up inside tmp_path."""
    files = tmp_path / "files"
    files.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return files


@pytest.fixture
def models_app(app, clamd_url, tmp_path):
    """The session app pointed at the session's clamd and a fresh storage folder."""
    old = dict(app.config)
    app.config.update(CLAMD_URL=clamd_url, JOBS_AUTOSTART=False)
    app.extensions["drem_storage"] = LocalStorage(tmp_path / "storage")
    yield app
    app.config.clear()
    app.config.update(old)
    app.extensions.pop("drem_storage", None)
