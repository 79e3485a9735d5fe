"""Settings for drem, read from environment variables and validated at start.

Every setting has an embedded default that runs a whole event on one laptop
(SQLite, in-process Socket.IO, a folder for models, worker threads). The
scale-out settings (``DATABASE_URL``, ``REDIS_URL``, ``STORAGE_URL``) switch one
component each.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


def _int(env: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def default_tracks_dir() -> Path:
    """The folder of DeepRacer track files: ``DREM_TRACKS_DIR`` or ``../shared/tracks``."""
    return Path(os.environ.get("DREM_TRACKS_DIR") or REPO_ROOT.parent / "shared" / "tracks")


def demo_models_dir() -> Path:
    """Where the trained demo models are cached: ``DREM_DEMO_MODELS`` or ``var/demo-models``."""
    return Path(os.environ.get("DREM_DEMO_MODELS") or REPO_ROOT / "var" / "demo-models")


def load_config(instance_path: str, env: dict | None = None) -> dict:
    """Build the Flask config mapping from ``env`` (default ``os.environ``).

    Returns a dict of upper-case settings. Raises :class:`ConfigError` when a value
    is out of range, or when ``DREM_ENV=production`` and ``SECRET_KEY`` is missing.
    """
    env = dict(os.environ if env is None else env)
    mode = env.get("DREM_ENV", "development")
    if mode not in ("development", "production", "testing"):
        raise ConfigError(f"DREM_ENV must be development, production or testing, got {mode!r}")
    secret = env.get("SECRET_KEY", "")
    if not secret:
        if mode == "production":
            raise ConfigError(
                "SECRET_KEY is not set. In production drem needs a fixed secret key: "
                "export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        secret = _instance_secret(instance_path)
    db_url = env.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'drem.sqlite'}"
    if db_url.startswith("postgres://"):
        db_url = "postgresql://" + db_url[len("postgres://"):]
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    upload_mb = _int(env, "UPLOAD_LIMIT_MB", 500, 1, 10_000)
    return {
        "DREM_ENV": mode,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL", ""),
        # Redis pub/sub ignores the database number: servers sharing a Redis need their own channel
        "SOCKETIO_CHANNEL": env.get("SOCKETIO_CHANNEL") or "flask-socketio",
        "STORAGE_URL": env.get("STORAGE_URL", ""),
        "CLAMD_URL": env.get("CLAMD_URL", f"unix://{REPO_ROOT / 'instance' / 'clamd' / 'clamd.sock'}"),
        "UPLOAD_LIMIT_BYTES": upload_mb * 1024 * 1024,
        "MODEL_RETENTION_DAYS": _int(env, "MODEL_RETENTION_DAYS", 30, 1, 3650),
        "BACKGROUND_JOBS": env.get("BACKGROUND_JOBS", "threads"),
        "TRACKS_DIR": str(default_tracks_dir()),
        "CAR_OFFLINE_AFTER_S": _int(env, "CAR_OFFLINE_AFTER_S", 10, 2, 3600),
        "COMMAND_TTL_S": _int(env, "COMMAND_TTL_S", 300, 5, 86400),
        "MODEL_URL_TTL_S": _int(env, "MODEL_URL_TTL_S", 600, 30, 86400),
        "SIGN_IN_CODE_TTL_H": _int(env, "SIGN_IN_CODE_TTL_H", 48, 1, 24 * 30),
        "TIMER_DEBOUNCE_MS": _int(env, "TIMER_DEBOUNCE_MS", 2000, 0, 60_000),
        "ACTIVATION_CODE_TTL_MIN": _int(env, "ACTIVATION_CODE_TTL_MIN", 60, 1, 24 * 60),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "") == "1",
        "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
        "PUBLIC_URL": env.get("PUBLIC_URL", ""),
        # Reverse proxies in front that set X-Forwarded-For/-Proto/-Host (1 behind HAProxy or
        # nginx); 0 trusts no such header, so clients cannot spoof their address.
        "PROXY_HOPS": _int(env, "PROXY_HOPS", 0, 0, 5),
        "SOCKETIO_ASYNC_MODE": env.get("SOCKETIO_ASYNC_MODE") or _detect_async_mode(),
    }


def _detect_async_mode() -> str:
    """``gevent`` under gunicorn's gevent worker (socket module patched), else ``threading``."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return "threading"
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def _instance_secret(instance_path: str) -> str:
    """A random secret kept in the instance folder, so sessions survive restarts."""
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()
