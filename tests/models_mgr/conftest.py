"""Session fixtures for the models_mgr tests: a real clamd and a real SeaweedFS S3.

Both are started through the project's own scripts (scripts/clamd.sh and
scripts/seaweedfs.sh) in temporary folders, so the tests also prove the scripts
work, and they never touch a developer's instance/ folder. SeaweedFS gets free
ports so it cannot collide with an instance someone else is running.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drem.models_mgr.storage import LocalStorage, S3Storage, Storage

from . import factories

REPO = Path(__file__).resolve().parents[2]
CLAMD_SH = REPO / "scripts" / "clamd.sh"
SEAWEEDFS_SH = REPO / "scripts" / "seaweedfs.sh"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """``count`` ports P in 20000..29999 with P and P+10000 (its gRPC port) free."""
    chosen: list[int] = []
    candidates = list(range(20000, 30000))
    random.shuffle(candidates)
    for port in candidates:
        if all(abs(port - c) > 1 for c in chosen) and _port_free(port) and _port_free(port + 10000):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free ports for SeaweedFS")


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@pytest.fixture(scope="session")
def clamd_rundir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run folder of a clamd started by scripts/clamd.sh for this test session."""
    rundir = tmp_path_factory.mktemp("clamd")
    _run([str(CLAMD_SH), "start", str(rundir)])
    try:
        yield rundir
    finally:
        subprocess.run([str(CLAMD_SH), "stop", str(rundir)], capture_output=True, check=False)


@pytest.fixture(scope="session")
def clamd_url(clamd_rundir: Path) -> str:
    """``unix://…/clamd.sock`` of the session's clamd."""
    return f"unix://{clamd_rundir / 'clamd.sock'}"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real SeaweedFS started by scripts/seaweedfs.sh; yields its s3.env values
    plus ``DIR`` and the ``SEAWEEDFS_*`` port variables used."""
    state = tmp_path_factory.mktemp("seaweedfs")
    s3, master, volume, filer, admin = _free_port_pairs(5)
    ports = {
        "SEAWEEDFS_S3_PORT": str(s3),
        "SEAWEEDFS_MASTER_PORT": str(master),
        "SEAWEEDFS_VOLUME_PORT": str(volume),
        "SEAWEEDFS_FILER_PORT": str(filer),
        "SEAWEEDFS_ADMIN_PORT": str(admin),
        "SEAWEEDFS_BUCKETS": "drem-test",
    }
    env = {**os.environ, **ports}
    out = _run([str(SEAWEEDFS_SH), "start", str(state)], env=env)
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    values.update(ports)
    values["DIR"] = str(state)
    try:
        yield values
    finally:
        subprocess.run(
            [str(SEAWEEDFS_SH), "stop", str(state)], env=env, capture_output=True, check=False
        )


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
