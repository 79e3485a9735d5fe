"""The reward worker's confinement is the boundary, not the source rules: code that has
escaped the restricted namespace (here: plain Python run right after ``lock_down``, as
the worker runs it) still cannot read or write files, reach the network, start
processes or threads, signal other processes, regain root or exceed its memory."""

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

import pytest

from car_client.confine import landlock_abi

ROOT = Path(__file__).resolve().parents[2]

ATTEMPTS = {
    "read_secret": "open(SECRET).read()",
    "list_folder": "os.listdir(OPEN_DIR)",
    "write_file": "open(os.path.join(OPEN_DIR, 'pwned'), 'w').write('x')",
    "socket": "socket.socket()",
    "tcp_connect": "socket.socket().connect(('127.0.0.1', PORT))",
    "fork": "os.fork() or os._exit(0)",
    "spawn": "os.posix_spawn('/bin/true', ['/bin/true'], {})",
    "thread": "threading.Thread(target=lambda: None).start()",
    "allocate_2_gib": "bytearray(2 * 1024 ** 3)",
    "signal_parent": "os.kill(os.getppid(), 0)",
    "regain_root": "os.setuid(0)",
    "raise_fd_limit": "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))",
}


@pytest.fixture
def open_dir():
    """A folder anyone may enter and write (as ``/tmp`` is): whatever is denied in it
    is denied by the confinement, not by file permissions."""
    folder = Path(tempfile.mkdtemp(prefix="drem-reward-test-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("holds_pipes", [True, False], ids=["as-the-worker", "landlock-alone"])
def test_escaped_code_is_still_confined(open_dir, holds_pipes):
    """``as-the-worker``: the worker's five descriptors are all taken, so every file or
    socket fails at once (EMFILE). ``landlock-alone``: two descriptors left free, so the
    next layer shows: Landlock refuses the file and the TCP connection (a socket may
    still be created)."""
    secret = open_dir / "racer-token"
    secret.write_text("token")
    secret.chmod(0o644)  # readable by anyone: only the confinement keeps it out of reach
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    lines = ["import json, os, resource, socket, sys, threading",
             "from drem.training.reward_worker import lock_down",
             "os.dup2(0, 3); os.dup2(1, 4)  # the worker's two pipes, as main() holds them"
             if holds_pipes else "",
             "info = lock_down(512, 60)",
             f"SECRET, OPEN_DIR, PORT = {str(secret)!r}, {str(open_dir)!r}, "
             f"{listener.getsockname()[1]}",
             "r = {}"]
    for key, expr in ATTEMPTS.items():
        lines.append(textwrap.dedent(f"""\
            try:
                {expr}
                r[{key!r}] = "allowed"
            except BaseException as exc:
                r[{key!r}] = type(exc).__name__ + ": " + str(exc)"""))
    lines.append("print(json.dumps({'info': info, 'r': r}), flush=True)")
    try:
        out = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True,
                             text=True, timeout=120, cwd="/",
                             env={"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
                                  "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    report = json.loads(out.stdout.strip().splitlines()[-1])
    r = report["r"]
    allowed = {key for key, outcome in r.items() if outcome == "allowed"}
    assert allowed == (set() if holds_pipes else {"socket"}), r
    assert r["allocate_2_gib"].startswith("MemoryError")
    assert r["thread"].startswith("RuntimeError: can't start new thread")
    assert r["raise_fd_limit"].startswith("ValueError")
    assert r["fork"].startswith("BlockingIOError") and r["spawn"].startswith("BlockingIOError")
    if holds_pipes:
        assert all(r[key].startswith("OSError: [Errno 24] Too many open files")
                   for key in ("read_secret", "list_folder", "write_file", "socket"))
    else:
        assert all(r[key].startswith("PermissionError")
                   for key in ("read_secret", "list_folder", "write_file"))
        assert r["tcp_connect"].startswith(("PermissionError", "OSError: [Errno 101]"))
    assert not (open_dir / "pwned").exists()
    assert report["info"]["landlock_abi"] == landlock_abi()
    if os.geteuid() == 0:
        assert report["info"]["uid"] == pwd.getpwnam("nobody").pw_uid
        assert report["info"]["network_namespace"] is True
