"""The model process: confined (not root, writes only in its scratch folder, no reads of
the car's files, no TCP), and transparent (same actions as a model run in-process)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from car_client.confine import landlock_abi
from car_client.pilots import load_pilot
from car_client.pilots.sandbox import SandboxedPilot
from tests.car_client import model_factories as mf

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
GREY_FRAMES = [RNG.integers(0, 256, (120, 160), dtype=np.uint8) for _ in range(3)]
RGB_FRAMES = [RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]


@pytest.fixture
def open_dir():
    """A folder anyone may enter and write (as ``/tmp`` is): a write or read denied in
    it is denied by the confinement, not by file permissions."""
    folder = Path(tempfile.mkdtemp(prefix="drem-sandbox-test-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _scratch(open_dir: Path) -> Path:
    scratch = open_dir / "scratch"
    scratch.mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(scratch, nobody.pw_uid, nobody.pw_gid)
    return scratch


def _confined(scratch: Path, code: str, tmp_path: Path, model_format: str = "tflite") -> dict:
    """Run ``code`` in a fresh Python confined as the model process is (the runtime for
    ``model_format`` imported first, then confine(scratch)); it prints a JSON result."""
    script = ("import json, os, socket, sys\nfrom car_client.confine import confine\n"
              "from car_client.pilots.model_process import _preload\n"
              f"_preload({model_format!r})\ninfo = confine({str(scratch)!r})\n"
              + textwrap.dedent(code))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _attempt(expr: str) -> str:
    return textwrap.dedent(f"""
        try:
            {expr}
            result = "allowed"
        except PermissionError:
            result = "denied"
    """)


def test_confined_process_writes_only_in_its_scratch_folder(tmp_path, open_dir):
    scratch = _scratch(open_dir)
    secret = open_dir / "car-token"
    secret.write_text("token")
    secret.chmod(0o644)  # readable by anyone: only the confinement keeps it out of reach
    outside = open_dir / "outside.txt"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = "r = {}\n"
    for key, expr in [
        ("scratch_write", f"open({str(scratch / 'ok.txt')!r}, 'w').write('ok')"),
        ("outside_write", f"open({str(outside)!r}, 'w').write('pwned')"),
        ("tmp_write", "open('/tmp/drem-sandbox-test-' + str(os.getpid()), 'w').write('x')"),
        ("secret_read", f"open({str(secret)!r}).read()"),
        ("tcp_connect", f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()"),
    ]:
        code += _attempt(expr) + f"r[{key!r}] = result\n"
    code += "r['uid'] = os.getuid(); r['abi'] = info['landlock_abi']\nprint(json.dumps(r))\n"
    try:
        r = _confined(scratch, code, tmp_path)
    finally:
        listener.close()
    assert r["scratch_write"] == "allowed" and (scratch / "ok.txt").read_text() == "ok"
    assert r["outside_write"] == "denied" and not outside.exists()
    assert r["tmp_write"] == "denied"
    assert r["secret_read"] == "denied"
    assert r["abi"] == landlock_abi()
    if landlock_abi() >= 4:
        assert r["tcp_connect"] == "denied"
    if os.geteuid() == 0:
        assert r["uid"] == pwd.getpwnam("nobody").pw_uid


def test_a_hostile_graph_that_got_past_the_check_still_cannot_write(tmp_path, open_dir):
    """Defence in depth: load the hostile DeepRacer graph confined, WITHOUT the graph
    check (DeepRacerPilot directly): its WriteFile fails and no file appears."""
    target = open_dir / "pwned"
    scratch = _scratch(open_dir)
    model = mf.write_deepracer_model(scratch / "hostile.tar.gz", write_file_to=str(target))
    os.chmod(model, 0o644)
    code = f"""
        from car_client.pilots.deepracer import DeepRacerPilot
        try:
            DeepRacerPilot({str(model)!r})
            result = "loaded"
        except ValueError as exc:
            result = str(exc)
        print(json.dumps({{"result": result}}))
    """
    r = _confined(scratch, code, tmp_path, "deepracer")
    assert "Permission denied" in r["result"]
    assert not target.exists()


def test_sandboxed_models_act_like_in_process_ones(deepracer_models, donkey_models):
    for path, frames in [(deepracer_models["discrete"], GREY_FRAMES),
                         (deepracer_models["sac"], GREY_FRAMES),
                         (donkey_models["linear.keras"], RGB_FRAMES),
                         (donkey_models["categorical.tflite"], RGB_FRAMES),
                         (donkey_models["linear.zip"], RGB_FRAMES)]:
        inner = load_pilot(path, sandbox=False)
        pilot = load_pilot(path)
        try:
            assert isinstance(pilot, SandboxedPilot)
            assert pilot.camera_mode == inner.camera_mode and pilot.name == path.name
            if os.geteuid() == 0:
                assert pilot.confinement["uid"] == pwd.getpwnam("nobody").pw_uid
            assert pilot.confinement["landlock_abi"] == landlock_abi()
            for frame in frames:
                a, b = pilot.act(frame), inner.act(frame)
                assert a.steering_deg == pytest.approx(b.steering_deg, abs=1e-4)
                assert a.speed_mps == pytest.approx(b.speed_mps, abs=1e-4)
            if pilot.kind is not None:
                assert pilot.predict(frames[0]) == pytest.approx(inner.predict(frames[0]), abs=1e-4)
            else:
                assert pilot.metadata == inner.metadata
        finally:
            pilot.close()
            inner.close()


def test_sandboxed_pilot_refusals_and_close(deepracer_models, tmp_path):
    lidar = mf.write_deepracer_model(tmp_path / "lidar.tar.gz", sensors=["LIDAR"])
    with pytest.raises(ValueError, match="needs a LiDAR"):
        load_pilot(lidar)
    pilot = load_pilot(deepracer_models["discrete"])
    scratch = pilot._scratch
    with pytest.raises(ValueError, match="shape"):
        pilot.act(np.zeros((120, 160, 3), np.uint8))
    with pytest.raises(AttributeError, match="Donkey"):
        pilot.predict(np.zeros((120, 160, 3), np.uint8))
    pilot.close()
    pilot.close()
    assert not scratch.exists()
    with pytest.raises(RuntimeError, match="model process has ended"):
        pilot.act(GREY_FRAMES[0])
