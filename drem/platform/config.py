"""Settings for drem: one table of environment variables, read and validated at start.

:data:`SETTINGS` is the single source: it drives :func:`load_config` (parsing, range
and choice checks, the :class:`ConfigError` messages), the README's configuration
table (``python -m drem.platform.config`` prints it; a test checks the README against
it) and the e2e harness (:func:`setting_names`). A variable that is unset or empty
takes its default.

Every setting has an embedded default that runs a whole event on one laptop
(SQLite, in-process Socket.IO, a folder for models, worker threads). The
scale-out settings (``DATABASE_URL``, ``REDIS_URL``, ``STORAGE_URL``) switch one
component each.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The setting types: how a value is parsed and what ``Setting.allowed`` holds.
TYPES = ("int", "str", "bool", "choice", "url", "path")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Setting:
    """One environment variable drem reads.

    Attributes:
        name: the variable, e.g. ``UPLOAD_LIMIT_MB``.
        type: one of :data:`TYPES`.
        default: the default as the docs show it. Unless ``computed``, it is the value
            itself, parsed like a value from the environment (``"500"``, ``"threads"``).
        allowed: ``int``: ``(lowest, highest)`` inclusive; ``choice``: the choices;
            ``url``: the accepted schemes (``postgresql`` also accepts ``postgresql+psycopg``);
            empty for the other types.
        meaning: one line for the docs.
        computed: True when ``default`` describes a default worked out at start (markdown
            text, e.g. "random, kept in the instance folder"); the parsed value is then None.
    """

    name: str
    type: str
    default: str
    allowed: tuple = ()
    meaning: str = ""
    computed: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown setting type {self.type!r}")

    def parse(self, raw: str | None) -> int | str | bool | None:
        """The value of ``raw`` (the variable's text; None or ``""``: unset).

        Returns an int (``int``), a bool (``bool``) or the text; for an unset variable the
        parsed default, or None when the default is ``computed``. Raises
        :class:`ConfigError` naming the variable when the text is not a valid value.
        """
        if raw in (None, ""):
            return None if self.computed else self.parse(self.default)
        if self.type == "int":
            try:
                value = int(raw)
            except ValueError as exc:
                raise ConfigError(f"{self.name} must be a whole number, got {raw!r}") from exc
            lo, hi = self.allowed
            if not lo <= value <= hi:
                raise ConfigError(f"{self.name} must be between {lo} and {hi}, got {value}")
            return value
        if self.type == "bool":
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            raise ConfigError(f"{self.name} must be 1 or 0, got {raw!r}")
        if self.type == "choice" and raw not in self.allowed:
            raise ConfigError(f"{self.name} must be {_or(self.allowed)}, got {raw!r}")
        if self.type == "url":
            scheme = urlsplit(raw).scheme.split("+")[0] if "://" in raw else ""
            if scheme not in self.allowed:
                # The value is not repeated: a database or Redis URL may hold a password.
                given = f"scheme {scheme!r}" if scheme else "no scheme"
                raise ConfigError(f"{self.name} must be a URL starting with "
                                  f"{_or([f'{s}://' for s in self.allowed])} (the value given has {given})")
        return raw

    def allowed_text(self) -> str:
        """The allowed values as the docs show them (markdown)."""
        if self.type == "int":
            return f"{self.allowed[0]} to {self.allowed[1]}"
        if self.type == "choice":
            return ", ".join(f"`{c}`" for c in self.allowed)
        if self.type == "url":
            return ", ".join(f"`{s}://`" for s in self.allowed)
        return {"bool": "`1` or `0`", "str": "text", "path": "folder"}[self.type]

    def default_text(self) -> str:
        """The default as the docs show it (markdown): literal text in backticks."""
        if self.computed or self.type in ("int", "bool"):
            return self.default
        return f"`{self.default}`"


def _or(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


_MINUTE_S, _DAY_S = 60, 24 * 60 * 60

#: Every environment variable drem reads, in the order the docs list them.
SETTINGS: tuple[Setting, ...] = (
    Setting("DREM_ENV", "choice", "development", ("development", "production", "testing"),
            "`production` requires a real `SECRET_KEY` (32+ characters, no placeholder)"),
    Setting("SECRET_KEY", "str", "random, kept in the instance folder", (),
            "session signing key; the same on every web process", computed=True),
    Setting("DREM_INSTANCE_PATH", "path", "`instance` in the checkout", (),
            "SQLite file, model folder, secret key", computed=True),
    Setting("DATABASE_URL", "url", "SQLite in the instance folder (WAL)",
            ("sqlite", "postgres", "postgresql"),
            "e.g. `postgresql://user@host/drem`", computed=True),
    Setting("REDIS_URL", "url", "none (in-process Socket.IO)", ("redis", "rediss", "unix"),
            "Socket.IO message queue and rate-limit store; required with more than one web process",
            computed=True),
    Setting("SOCKETIO_CHANNEL", "str", "flask-socketio", (),
            "Redis pub/sub channel; give each drem installation sharing a Redis its own"),
    Setting("SOCKETIO_ASYNC_MODE", "choice", "`gevent` under gunicorn's gevent worker, else `threading`",
            ("threading", "gevent"), "how Socket.IO runs its connections", computed=True),
    Setting("STORAGE_URL", "url", "folder `instance/models`", ("file", "s3"),
            "`file:///folder` or `s3://bucket/prefix` (with the usual `AWS_*` settings and "
            "`AWS_ENDPOINT_URL`)", computed=True),
    Setting("CLAMD_URL", "url", "`unix://instance/clamd/clamd.sock` in the checkout", ("unix", "tcp"),
            "the virus scanner: `unix:///path` or `tcp://host:3310`", computed=True),
    Setting("UPLOAD_LIMIT_MB", "int", "500", (1, 10_000),
            "largest model upload (keep clamd's stream limit above it)"),
    Setting("UPLOAD_QUOTA_MB", "int", "2000", (1, 1_000_000),
            "stored model bytes one racer may hold (uploads beyond it are refused)"),
    Setting("MODEL_RETENTION_DAYS", "int", "30", (1, 3650), "models older than this are deleted"),
    Setting("BACKGROUND_JOBS", "choice", "threads", ("threads", "external"),
            "`external` when separate `drem worker` processes run the jobs"),
    Setting("LOGIN_RATE_LIMIT", "str", "10 per minute", (),
            "per client address, shared by every login endpoint and car activation; "
            "the same again per account name"),
    Setting("SIGN_IN_CODE_TTL_H", "int", "48", (1, 24 * 30), "lifetime of a racer's one-time sign-in code"),
    Setting("API_TOKEN_TTL_DAYS", "int", "90", (1, 3650), "lifetime of a personal API token"),
    Setting("ACTIVATION_CODE_TTL_MIN", "int", "60", (1, 24 * 60),
            "lifetime of a car's one-time activation code"),
    Setting("CAR_OFFLINE_AFTER_S", "int", "10", (2, 3600), "a car is offline after this much silence"),
    Setting("COMMAND_TTL_S", "int", "300", (5, _DAY_S),
            "a command queued for an offline car fails after this"),
    Setting("MODEL_URL_TTL_S", "int", "600", (30, _DAY_S),
            "lifetime of the signed model download link sent to a car"),
    Setting("TIMER_DEBOUNCE_MS", "int", "2000", (0, _MINUTE_S * 1000),
            "lap-timer crossings closer than this are one crossing"),
    Setting("DREM_TRACKS_DIR", "path", "`../shared/tracks` next to the checkout", (),
            "DeepRacer track files (`.npy`)", computed=True),
    Setting("PUBLIC_URL", "url", "the address a request came to", ("http", "https"),
            "the server URL in QR codes and for the cars' model downloads (set it behind a proxy)",
            computed=True),
    Setting("PROXY_HOPS", "int", "0", (0, 5),
            "reverse proxies in front that set `X-Forwarded-For`/`-Proto`/`-Host` and are trusted "
            "(1 behind HAProxy or nginx); 0 trusts no such header"),
    Setting("SESSION_COOKIE_SECURE", "bool", "off", (), "`1` behind HTTPS"),
    Setting("DREM_ADMIN_PASSWORD", "str", "random, printed", (),
            "the first admin's password for `drem init`", computed=True),
    Setting("DREM_DEMO_MODELS", "path",
            "`~/.cache/drem/demo-models` (`$XDG_CACHE_HOME/drem/demo-models` when set)", (),
            "where `make models` and `drem demo` keep the trained demo models", computed=True),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting_names() -> tuple[str, ...]:
    """The names of every environment variable drem reads, in table order."""
    return tuple(_BY_NAME)


def read_setting(name: str, env: Mapping[str, str] | None = None) -> int | str | bool | None:
    """The parsed value of one setting from ``env`` (default ``os.environ``).

    None when the variable is unset and its default is computed. Raises
    :class:`ConfigError` for an invalid value, KeyError for a name not in :data:`SETTINGS`.
    """
    env = os.environ if env is None else env
    return _BY_NAME[name].parse(env.get(name))


def default_tracks_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of DeepRacer track files: ``DREM_TRACKS_DIR`` or ``../shared/tracks``."""
    return Path(read_setting("DREM_TRACKS_DIR", env) or REPO_ROOT.parent / "shared" / "tracks")


def demo_models_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the trained demo models are cached.

    ``DREM_DEMO_MODELS`` when set, else ``$XDG_CACHE_HOME/drem/demo-models`` when
    ``XDG_CACHE_HOME`` is set, else ``~/.cache/drem/demo-models``; the same folder
    for ``make models``, ``make demo`` and ``drem demo`` run directly.
    """
    env = os.environ if env is None else env
    chosen = read_setting("DREM_DEMO_MODELS", env)
    if chosen:
        return Path(chosen).expanduser()
    cache = env.get("XDG_CACHE_HOME") or Path.home() / ".cache"  # the XDG base-directory rule
    return Path(cache) / "drem" / "demo-models"


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict:
    """Build the Flask config mapping from ``env`` (default ``os.environ``).

    Returns a dict of upper-case settings. Raises :class:`ConfigError` when a value
    is invalid or out of range (the message names the variable), or when
    ``DREM_ENV=production`` and ``SECRET_KEY`` is missing, shorter than
    :data:`MIN_SECRET_KEY` or a known placeholder (also for ``DREM_ADMIN_PASSWORD``).
    """
    env = dict(os.environ if env is None else env)
    value = {s.name: s.parse(env.get(s.name)) for s in SETTINGS}
    mode = value["DREM_ENV"]
    secret = value["SECRET_KEY"]
    if not secret:
        if mode == "production":
            raise ConfigError(
                "SECRET_KEY is not set. In production drem needs a fixed secret key: "
                "export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        secret = _instance_secret(instance_path)
    elif mode == "production":
        check_secret("SECRET_KEY", secret, MIN_SECRET_KEY)
    if mode == "production" and env.get("DREM_ADMIN_PASSWORD"):
        check_secret("DREM_ADMIN_PASSWORD", env["DREM_ADMIN_PASSWORD"], MIN_ADMIN_PASSWORD)
    db_url = value["DATABASE_URL"] or f"sqlite:///{Path(instance_path) / 'drem.sqlite'}"
    if db_url.startswith("postgres://"):
        db_url = "postgresql://" + db_url[len("postgres://"):]
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    return {
        "DREM_ENV": mode,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": value["REDIS_URL"] or "",
        # Redis pub/sub ignores the database number: servers sharing a Redis need their own channel
        "SOCKETIO_CHANNEL": value["SOCKETIO_CHANNEL"],
        "STORAGE_URL": value["STORAGE_URL"] or "",
        "CLAMD_URL": value["CLAMD_URL"] or f"unix://{REPO_ROOT / 'instance' / 'clamd' / 'clamd.sock'}",
        "UPLOAD_LIMIT_BYTES": value["UPLOAD_LIMIT_MB"] * 1024 * 1024,
        "MODEL_RETENTION_DAYS": value["MODEL_RETENTION_DAYS"],
        "BACKGROUND_JOBS": value["BACKGROUND_JOBS"],
        "TRACKS_DIR": str(default_tracks_dir(env)),
        "CAR_OFFLINE_AFTER_S": value["CAR_OFFLINE_AFTER_S"],
        "COMMAND_TTL_S": value["COMMAND_TTL_S"],
        "MODEL_URL_TTL_S": value["MODEL_URL_TTL_S"],
        "SIGN_IN_CODE_TTL_H": value["SIGN_IN_CODE_TTL_H"],
        "API_TOKEN_TTL_DAYS": value["API_TOKEN_TTL_DAYS"],
        "UPLOAD_QUOTA_BYTES": value["UPLOAD_QUOTA_MB"] * 1024 * 1024,
        "TIMER_DEBOUNCE_MS": value["TIMER_DEBOUNCE_MS"],
        "ACTIVATION_CODE_TTL_MIN": value["ACTIVATION_CODE_TTL_MIN"],
        "LOGIN_RATE_LIMIT": value["LOGIN_RATE_LIMIT"],
        "RATELIMIT_STORAGE_URI": value["REDIS_URL"] or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": value["SESSION_COOKIE_SECURE"],
        "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
        "PUBLIC_URL": value["PUBLIC_URL"] or "",
        # 0 trusts no X-Forwarded-* header, so clients cannot spoof their address.
        "PROXY_HOPS": value["PROXY_HOPS"],
        "SOCKETIO_ASYNC_MODE": value["SOCKETIO_ASYNC_MODE"] or _detect_async_mode(),
    }


#: Shortest ``SECRET_KEY`` production accepts (characters; ``secrets.token_hex(32)`` gives 64).
MIN_SECRET_KEY = 32
#: Shortest ``DREM_ADMIN_PASSWORD`` production accepts.
MIN_ADMIN_PASSWORD = 12
#: Words that mark a value copied from an example file instead of chosen (lower case).
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "example", "secret",
                     "password", "placeholder", "xxxx", "dev-key", "devkey", "insecure")


def check_secret(name: str, value: str, min_length: int) -> None:
    """Refuse a production secret that is short or a known placeholder.

    ``value`` is the setting's text. Raises :class:`ConfigError` naming ``name`` (never the
    value) when it has fewer than ``min_length`` characters, contains one of
    :data:`PLACEHOLDER_WORDS` (e.g. ``change-me`` from ``deploy/drem.env.example``) or is one
    character repeated.
    """
    lowered = value.lower()
    if len(value) < min_length:
        problem = f"is shorter than {min_length} characters"
    elif any(word in lowered for word in PLACEHOLDER_WORDS):
        problem = "is a placeholder from an example file"
    elif len(set(value)) < 4:
        problem = "has almost no distinct characters"
    else:
        return
    raise ConfigError(f"{name} {problem}; production needs a real one: "
                      "python -c 'import secrets; print(secrets.token_hex(32))'")


def markdown_table() -> str:
    """The README's configuration table (markdown, one row per setting, ends with a newline)."""
    rows = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {s.default_text()} | {s.allowed_text()} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


def _detect_async_mode() -> str:
    """``gevent`` under gunicorn's gevent worker (socket module patched), else ``threading``."""
    try:
        from gevent import monkey  # third-party; absent where only the car extra is installed
    except ImportError:  # pragma: no cover - gevent is a server dependency
        return "threading"
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def _instance_secret(instance_path: str) -> str:
    """A random secret kept in the instance folder, so sessions survive restarts."""
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


if __name__ == "__main__":  # python -m drem.platform.config > table.md: regenerate the README table
    sys.stdout.write(markdown_table())
