"""Virus scanning against a real clamd started by scripts/clamd.sh, with drem.ndb only
(plus the official databases if this machine has them)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drem.models_mgr.scanner import (
    ClamdScanner,
    ScannerUnavailable,
    ScanVerdict,
    scan_stream,
    scanner_from_url,
)

from . import factories as f
from .conftest import CLAMD_SH, REPO

MB = 1024 * 1024


@pytest.fixture(scope="module")
def scanner(clamd_url: str) -> ClamdScanner:
    s = scanner_from_url(clamd_url, timeout=60)
    s.ping()
    return s


def test_ndb_signature_file_is_eicar() -> None:
    lines = [ln for ln in (REPO / "deploy/clamav/drem.ndb").read_text().splitlines() if ln.strip()]
    assert lines
    name, target, offset, hexbytes = lines[0].split(":")
    assert "EICAR" in name.upper()
    assert (target, offset) == ("0", "*")
    assert bytes.fromhex(hexbytes) == f.EICAR


def test_generated_config_raises_limits(clamd_rundir: Path) -> None:
    conf = (clamd_rundir / "clamd.conf").read_text()
    settings = dict(
        line.split(None, 1)
        for line in conf.splitlines()
        if line.strip() and not line.startswith("#")
    )
    for key in ("StreamMaxLength", "MaxFileSize", "MaxScanSize"):
        assert settings[key].endswith("M") and int(settings[key][:-1]) >= 600, key
    assert settings["LocalSocket"] == str(clamd_rundir / "clamd.sock")
    assert settings["DatabaseDirectory"] == str(clamd_rundir / "db")
    assert settings["Foreground"] == "no"
    assert "User" not in settings
    assert (clamd_rundir / "db" / "drem.ndb").is_file()


@pytest.mark.parametrize(
    "builder",
    [f.eicar_file, f.eicar_in_bigger_file, f.eicar_in_tar_gz, f.eicar_in_zip],
    ids=["plain", "inside-bigger-file", "inside-tar-gz", "inside-zip"],
)
def test_eicar_is_found(scanner: ClamdScanner, tmp_path: Path, builder) -> None:
    path = builder(tmp_path)
    with open(path, "rb") as fh:
        verdict = scanner.scan_stream(fh)
    assert verdict.clean is False
    assert verdict.signature and "EICAR" in verdict.signature.upper()


def test_clean_files_are_clean(scanner: ClamdScanner, tmp_path: Path) -> None:
    for path in (f.deepracer_tar_gz(tmp_path), f.keras_zip(tmp_path), f.random_file(tmp_path, MB)):
        assert scanner.scan_path(str(path)) == ScanVerdict(clean=True, signature=None)
    assert scanner.scan_stream(io.BytesIO(b"")) == ScanVerdict(clean=True, signature=None)


def test_stream_above_debian_default_limit(scanner: ClamdScanner, tmp_path: Path) -> None:
    """30 MB: with Debian's 25 MB StreamMaxLength this breaks the pipe."""
    path = f.random_file(tmp_path, 30 * MB)
    assert scanner.scan_path(str(path)).clean is True
    with open(path, "ab") as fh:  # the same big file with EICAR at the very end
        fh.write(f.EICAR)
    verdict = scanner.scan_path(str(path))
    assert verdict.clean is False and "EICAR" in (verdict.signature or "").upper()


def test_module_level_scan_stream(clamd_url: str) -> None:
    verdict = scan_stream(io.BytesIO(b"padding " + f.EICAR), clamd_url)
    assert verdict.clean is False and "EICAR" in (verdict.signature or "").upper()
    assert scan_stream(io.BytesIO(b"just bytes"), clamd_url).clean is True


def test_version(scanner: ClamdScanner) -> None:
    assert scanner.version().startswith("ClamAV ")


# ------------------------------------------------------------ no verdict, no clean


def test_wrong_socket_path_is_unavailable(tmp_path: Path) -> None:
    s = ClamdScanner(f"unix://{tmp_path}/no-such-clamd.sock")
    with pytest.raises(ScannerUnavailable):
        s.ping()
    with pytest.raises(ScannerUnavailable, match="no verdict"):
        s.scan_stream(io.BytesIO(f.EICAR))


def test_closed_tcp_port_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ScannerUnavailable):
        ClamdScanner(f"tcp://127.0.0.1:{port}", timeout=5).scan_stream(io.BytesIO(b"x"))


@pytest.fixture
def fake_clamd(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A unix socket server that misbehaves as told: ``behaviour[0]`` is
    ``"hangup"`` (close after reading 64 KiB) or an answer line to send."""
    path = tmp_path / "fake.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    behaviour: list[str] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            if behaviour[0] == "hangup":
                conn.recv(64 * 1024)
                conn.shutdown(socket.SHUT_RDWR)
                return
            while True:  # read the whole INSTREAM, then answer
                data = conn.recv(1 << 20)
                if not data or data.endswith(b"\x00\x00\x00\x00"):
                    break
            conn.sendall(behaviour[0].encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", behaviour
    server.close()
    thread.join(timeout=5)


def test_connection_broken_mid_stream_is_unavailable(fake_clamd) -> None:
    url, behaviour = fake_clamd
    behaviour.append("hangup")
    with pytest.raises(ScannerUnavailable, match="no verdict"):
        ClamdScanner(url, timeout=10).scan_stream(f.PatternStream(20 * MB))


@pytest.mark.parametrize(
    "answer",
    ["stream: Can't allocate memory ERROR", "INSTREAM size limit exceeded. ERROR", "garbage"],
)
def test_error_answers_are_unavailable(fake_clamd, answer: str) -> None:
    url, behaviour = fake_clamd
    behaviour.append(answer)
    with pytest.raises(ScannerUnavailable):
        ClamdScanner(url, timeout=10).scan_stream(io.BytesIO(b"some model bytes"))


def test_real_clamd_with_small_stream_limit_is_unavailable(tmp_path_factory) -> None:
    """A clamd left with a small StreamMaxLength cuts the stream off: no verdict, no clean."""
    rundir = tmp_path_factory.mktemp("clamd-small")
    env = {**os.environ, "CLAMD_STREAM_MAX": "1M", "CLAMD_SCAN_MAX": "2M"}
    subprocess.run(
        [str(CLAMD_SH), "start", str(rundir)], env=env, check=True, capture_output=True, timeout=120
    )
    try:
        s = ClamdScanner(f"unix://{rundir}/clamd.sock", timeout=30)
        s.ping()
        with pytest.raises(ScannerUnavailable):
            s.scan_stream(f.PatternStream(8 * MB))
    finally:
        subprocess.run([str(CLAMD_SH), "stop", str(rundir)], capture_output=True, timeout=60)


def test_source_errors_are_not_blamed_on_clamd(scanner: ClamdScanner) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise ConnectionResetError("storage went away")

    with pytest.raises(ConnectionResetError):
        scanner.scan_stream(Broken())
    scanner.ping()  # clamd is fine afterwards


def test_bad_urls() -> None:
    for url in ("", "http://x", "unix://relative.sock", "tcp://"):
        with pytest.raises(ValueError):
            ClamdScanner(url)
    assert ClamdScanner("tcp://127.0.0.1")._address == ("127.0.0.1", 3310)
    assert ClamdScanner("/run/clamd.sock")._address == "/run/clamd.sock"


def test_clamd_script_is_idempotent(clamd_rundir: Path) -> None:
    pid = (clamd_rundir / "clamd.pid").read_text().strip()
    out = subprocess.run(
        [str(CLAMD_SH), "start", str(clamd_rundir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == f"unix://{clamd_rundir}/clamd.sock"
    assert "already running" in out.stderr
    assert (clamd_rundir / "clamd.pid").read_text().strip() == pid
    status = subprocess.run(
        [str(CLAMD_SH), "status", str(clamd_rundir)], capture_output=True, timeout=60
    )
    assert status.returncode == 0
