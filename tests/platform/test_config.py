"""Settings are validated at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drem.platform.config import ConfigError, load_config


def test_production_without_secret_key_stops_with_clear_message(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config(str(tmp_path), {"DREM_ENV": "production"})
    proc = subprocess.run([sys.executable, "-c", "import wsgi"], capture_output=True, text=True,
                          env={"DREM_ENV": "production", "DREM_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin"})
    assert proc.returncode != 0 and "SECRET_KEY is not set" in proc.stderr


def test_out_of_range_setting(tmp_path):
    with pytest.raises(ConfigError, match="UPLOAD_LIMIT_MB must be between"):
        load_config(str(tmp_path), {"UPLOAD_LIMIT_MB": "0"})
    with pytest.raises(ConfigError, match="whole number"):
        load_config(str(tmp_path), {"CAR_OFFLINE_AFTER_S": "soon"})


def test_defaults_are_embedded(tmp_path):
    cfg = load_config(str(tmp_path), {})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/drem.sqlite"
    assert cfg["UPLOAD_LIMIT_BYTES"] == 500 * 1024 * 1024
    assert len(cfg["SECRET_KEY"]) == 64
    assert load_config(str(tmp_path), {})["SECRET_KEY"] == cfg["SECRET_KEY"]  # kept across restarts
    pg = load_config(str(tmp_path), {"DATABASE_URL": "postgres://u@h/db"})
    assert pg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_the_server_entry_point_freezes_the_startup_objects(tmp_path):
    """wsgi.py keeps the app's long-lived objects out of the full garbage collections."""
    code = "import gc, wsgi; print(gc.get_freeze_count(), gc.get_count()[2])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"DREM_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin"})
    frozen, oldest = map(int, proc.stdout.split())
    assert frozen > 50_000 and oldest == 0
