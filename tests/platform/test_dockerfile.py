"""No Docker engine runs here: exercise the image's runtime steps with the same commands."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dockerfile_runtime_steps(tmp_path):
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") == 2, "multi-stage build"
    assert re.search(r"^USER drem$", text, re.M), "runs as a non-root user"
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert cmd[:2] == ["sh", "-c"] and "drem init" in cmd[2] and "wsgi:app" in cmd[2]
    port = _free_port()
    bindir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "DREM_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
           "DREM_INSTANCE_PATH": str(tmp_path), "PORT": str(port), "DREM_ADMIN_PASSWORD": "docker-admin-1",
           "DREM_TRACKS_DIR": os.environ.get("DREM_TRACKS_DIR", str(ROOT.parent / "shared" / "tracks"))}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise AssertionError("server did not answer /healthz")
        resp = requests.post(f"http://127.0.0.1:{port}/api/auth/tokens",
                             json={"username": "admin", "password": "docker-admin-1"}, timeout=5)
        assert resp.status_code == 201 and resp.json()["token"].startswith("drem_"), resp.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert "created admin 'admin'" in out
    assert (tmp_path / "drem.sqlite").exists()


def test_image_installs_the_server_extra_only():
    """The build stage's requirement list is pyproject.toml's server dependencies, no car stack."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    program = re.search(r'^RUN python -c "(.*?)" > requirements-server\.txt', text, re.M).group(1)
    proc = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=60)
    names = {re.split(r"[\[<>=~!; ]", line, maxsplit=1)[0].lower() for line in proc.stdout.splitlines()}
    assert {"flask", "gunicorn", "psycopg", "redis", "boto3", "clamav-client", "psutil", "click"} <= names
    assert not names & {"tensorflow-cpu", "ai-edge-litert", "opencv-python-headless", "pytest", "playwright"}
    assert "pip wheel --wheel-dir /wheels -r requirements-server.txt" in text
    # drem imports car_client.protocol and car_client.model_check (the layer contract allows
    # nothing else): the image ships exactly those.
    assert re.search(r"^COPY car_client/__init__\.py car_client/protocol\.py car_client/model_check\.py "
                     r"\./car_client/$", text, re.M)
