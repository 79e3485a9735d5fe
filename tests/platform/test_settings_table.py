"""The settings table (drem.platform.config.SETTINGS) is the one source of drem's settings.

The README's configuration table must list exactly its settings with the same defaults,
allowed values and meanings, and every environment variable or Flask config key that
drem's code reads must come from it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from drem.platform.config import SETTINGS, load_config, markdown_table, setting_names

ROOT = Path(__file__).resolve().parents[2]

#: Environment variables drem reads that belong to other tools, with the reason.
NOT_DREM_SETTINGS = {
    "AWS_REGION": "boto3's own setting, read as a fallback for the S3 region (STORAGE_URL's AWS_*)",
    "AWS_DEFAULT_REGION": "boto3's own setting, same as AWS_REGION",
    "XDG_CACHE_HOME": "the XDG base-directory rule for the demo model cache (DREM_DEMO_MODELS)",
    "HTTP_HOST": "a WSGI request key (the Socket.IO same-origin check in drem/app.py), not a process setting",
    "HTTP_X_FORWARDED_PROTO": "a WSGI request key (the Socket.IO same-origin check behind a proxy)",
}
#: Flask config keys drem reads that are not settings: tests and tools pass them as overrides.
CONFIG_OVERRIDES = {
    "JOBS_AUTOSTART": "tests start no background job runner (create_app(overrides=...))",
    "NODE_MODULES": "tests point the front-end library folder elsewhere",
}

_ENV_READ = re.compile(r"""(?:environ\)?\.get\(|\benv\.get\(|environ\[|getenv\(|envvar=|read_setting\()\s*"""
                       r"""["']([A-Z][A-Z0-9_]*)["']""")
_CONFIG_READ = re.compile(r"""config(?:\[|\.get\()\s*["']([A-Z][A-Z0-9_]*)["']""")


def _readme_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0] == "| variable | default | allowed | meaning |", lines[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_readme_lists_exactly_the_settings_table():
    rows = _readme_rows()
    names = [row[0].strip("`") for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"README lists these settings more than once: {duplicates}"
    assert set(names) == set(setting_names()), (
        f"README only: {sorted(set(names) - set(setting_names()))}; "
        f"table only: {sorted(set(setting_names()) - set(names))}")
    readme = {row[0].strip("`"): row[1:] for row in rows}
    for s in SETTINGS:
        assert readme[s.name] == [s.default_text(), s.allowed_text(), s.meaning], (
            f"README row for {s.name} differs from SETTINGS; regenerate it with "
            "`python -m drem.platform.config`")


def test_the_module_prints_the_readme_table():
    proc = subprocess.run([sys.executable, "-m", "drem.platform.config"], capture_output=True, text=True,
                          check=True, cwd=ROOT, timeout=60)
    assert proc.stdout == markdown_table()
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_every_environment_variable_drem_reads_is_in_the_table():
    names = set(setting_names())
    seen, unknown = set(), {}
    for path in sorted((ROOT / "drem").rglob("*.py")):
        for name in _ENV_READ.findall(path.read_text()):
            seen.add(name)
            if name not in names and name not in NOT_DREM_SETTINGS:
                unknown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"environment variables read but not in SETTINGS: {unknown}"
    assert {"DREM_INSTANCE_PATH", "DREM_ADMIN_PASSWORD", "REDIS_URL", "XDG_CACHE_HOME"} <= seen, seen


def test_every_config_key_drem_reads_comes_from_load_config(tmp_path):
    provided = set(load_config(str(tmp_path), {}))
    seen, unknown = set(), {}
    for path in sorted((ROOT / "drem").rglob("*.py")):
        for key in _CONFIG_READ.findall(path.read_text()):
            seen.add(key)
            if key not in provided and key not in CONFIG_OVERRIDES:
                unknown.setdefault(key, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"config keys read that no setting provides: {unknown}"
    assert {"UPLOAD_LIMIT_BYTES", "TRACKS_DIR", "JOBS_AUTOSTART"} <= seen, seen


def test_each_setting_is_complete_and_its_default_is_valid():
    for s in SETTINGS:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", s.name) and s.default and s.meaning, s
        if s.type == "int":
            lo, hi = s.allowed
            assert lo <= int(s.default) <= hi, s
        if s.type in ("choice", "url"):
            assert s.allowed, s
        if not s.computed:
            assert s.parse(None) == s.parse(s.default) is not None, s
