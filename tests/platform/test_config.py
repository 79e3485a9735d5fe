"""Settings are validated at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drem.platform.config import ConfigError, demo_models_dir, load_config


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


def test_invalid_choices_flags_and_urls_stop_with_a_message_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="DREM_ENV must be development, production or testing, got 'prod'"):
        load_config(str(tmp_path), {"DREM_ENV": "prod"})
    with pytest.raises(ConfigError, match="BACKGROUND_JOBS must be threads or external"):
        load_config(str(tmp_path), {"BACKGROUND_JOBS": "celery"})
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE must be 1 or 0"):
        load_config(str(tmp_path), {"SESSION_COOKIE_SECURE": "maybe"})
    with pytest.raises(ConfigError, match="DATABASE_URL must be a URL starting with") as err:
        load_config(str(tmp_path), {"DATABASE_URL": "mysql://drem:hunter2@db/drem"})
    assert "hunter2" not in str(err.value), "a URL's password is never repeated in the message"
    with pytest.raises(ConfigError, match="REDIS_URL must be a URL"):
        load_config(str(tmp_path), {"REDIS_URL": "127.0.0.1:6379"})


def test_values_are_parsed_and_empty_means_default(tmp_path):
    cfg = load_config(str(tmp_path), {"SESSION_COOKIE_SECURE": "1", "PROXY_HOPS": "1",
                                      "BACKGROUND_JOBS": "external", "REDIS_URL": "redis://127.0.0.1:6379/2"})
    assert cfg["SESSION_COOKIE_SECURE"] is True and cfg["PROXY_HOPS"] == 1
    assert cfg["BACKGROUND_JOBS"] == "external" and cfg["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/2"
    empty = load_config(str(tmp_path), {"UPLOAD_LIMIT_MB": "", "DREM_ENV": "", "SOCKETIO_CHANNEL": ""})
    assert empty["UPLOAD_LIMIT_BYTES"] == 500 * 1024 * 1024 and empty["DREM_ENV"] == "development"
    assert empty["SOCKETIO_CHANNEL"] == "flask-socketio" and empty["SESSION_COOKIE_SECURE"] is False
    assert empty["REDIS_URL"] == "" and empty["RATELIMIT_STORAGE_URI"] == "memory://"


def test_demo_models_cache_is_one_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_models_dir({}) == tmp_path / "home" / ".cache" / "drem" / "demo-models"
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert demo_models_dir(xdg) == tmp_path / "xdg" / "drem" / "demo-models"
    chosen = {"DREM_DEMO_MODELS": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert demo_models_dir(chosen) == tmp_path / "mine"
