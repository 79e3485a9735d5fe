"""Benchmark of the model upload path: HTTP upload -> clamd scan -> inspection -> available.

Starts its own clamd (scripts/clamd.sh, in a temporary folder) and its own live server
(drem/demo/live_server.py: gunicorn + gevent, production settings, SQLite), builds a 200 MB
DeepRacer model (a valid tar.gz whose agent/model.pb is 200 MB of random bytes, written
in chunks), and measures in one run:

- clamd alone: INSTREAM of that file through ``drem.models_mgr.scanner``;
- end to end: a racer uploads the file over HTTP (``POST /api/models``, streamed with a
  Content-Length, as the browser does) until the API says ``available``;
- the ratio of the two throughputs (target >= 0.5);
- the peak RSS growth of the gunicorn worker during the end-to-end run, sampled every
  20 ms from /proc (target <= 64 MB);
- the worst ``/healthz`` latency during the end-to-end run: how long the server's one
  gevent loop was unable to answer anyone else.

clamd keeps a cache of clean files (by hash), so it is restarted before each
measurement: both scan the file as new content.

Run: ``.venv/bin/python bench/upload.py [--size-mb 200] [--keep]``. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from benchlib import test_module

from drem.demo.launchers import Clamd
from drem.demo.live_server import LiveServer, RssSampler
from drem.models_mgr.scanner import scanner_from_url

factories = test_module("tests/models_mgr/factories.py")

MIB = 1024 * 1024
TARGET_RATIO = 0.5
TARGET_RSS_MB = 64


class RandomStream(io.RawIOBase):
    """``size`` random bytes made on demand, 1 MiB of ``os.urandom`` at a time."""

    def __init__(self, size: int):
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, MIB)
        memoryview(buffer)[:n] = os.urandom(n)
        self.left -= n
        return n


def build_model(folder: Path, pb_size: int) -> Path:
    """A valid DeepRacer export: model_metadata.json plus an agent/model.pb of ``pb_size``
    bytes (a real GraphDef header, then random bytes), streamed into a tar.gz."""
    path = folder / "big-model.tar.gz"
    meta = json.dumps(factories.discrete_metadata()).encode()
    head = factories.tiny_model_pb()
    with tarfile.open(path, "w:gz", compresslevel=1, format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("model_metadata.json")
        info.size, info.mtime = len(meta), int(time.time())
        tar.addfile(info, io.BytesIO(meta))
        info = tarfile.TarInfo("agent")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(info)
        info = tarfile.TarInfo("agent/model.pb")
        info.size, info.mtime = pb_size, int(time.time())
        body = io.BufferedReader(_Concat(head, RandomStream(pb_size - len(head))), MIB)
        tar.addfile(info, body)
    return path


class _Concat(io.RawIOBase):
    """``prefix`` bytes followed by a raw stream."""

    def __init__(self, prefix: bytes, rest: io.RawIOBase):
        super().__init__()
        self.prefix, self.rest = prefix, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            memoryview(buffer)[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        return self.rest.readinto(buffer)


class LatencyProbe:
    """Asks ``/healthz`` every ``interval_s`` in a thread and keeps the slowest answer."""

    def __init__(self, url: str, interval_s: float = 0.1):
        self.url, self.interval_s = url + "/healthz", interval_s
        self.worst = 0.0
        self.worst_at = 0.0  # seconds after the probe started
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        start = time.perf_counter()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                session.get(self.url, timeout=60)
            except requests.RequestException:
                pass
            took = time.perf_counter() - t0
            if took > self.worst:
                self.worst, self.worst_at = took, t0 - start
            self.count += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)


def scan_alone(clamd_url: str, path: Path) -> float:
    """Seconds clamd needs for an INSTREAM scan of ``path`` (must be clean)."""
    t0 = time.perf_counter()
    verdict = scanner_from_url(clamd_url).scan_path(str(path))
    elapsed = time.perf_counter() - t0
    if not verdict.clean:
        raise SystemExit(f"clamd found {verdict.signature} in the benchmark file")
    return elapsed


def end_to_end(server: LiveServer, path: Path) -> dict[str, float]:
    """Upload ``path`` as a new racer and wait until it is available; phase times in s."""
    racer = server.create_user("racer")
    size = path.stat().st_size
    t0 = time.perf_counter()
    wall0 = time.time()
    with open(path, "rb") as fh:
        resp = requests.post(server.url + "/api/models", params={"filename": path.name}, data=fh,
                             headers={"Authorization": f"Bearer {racer['token']}",
                                      "Content-Type": "application/octet-stream",
                                      "Content-Length": str(size)}, timeout=600)
    t_uploaded = time.perf_counter() - t0
    if resp.status_code != 201:
        raise SystemExit(f"upload failed: {resp.status_code} {resp.text[:500]}")
    model_id = resp.json()["id"]
    while True:
        model = server.model(model_id, racer["token"])
        if model["status"] in ("available", "invalid", "quarantined"):
            break
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"model still {model['status']} after 600 s")
        time.sleep(0.02)
    t_available = time.perf_counter() - t0
    if model["status"] != "available":
        raise SystemExit(f"model ended {model['status']}: {model['status_reason']}")
    scanned = datetime.fromisoformat(model["scanned_at"])
    if scanned.tzinfo is None:
        scanned = scanned.replace(tzinfo=UTC)
    return {"upload": t_uploaded, "scanned": scanned.timestamp() - wall0, "available": t_available}


def main() -> int:
    """Run the benchmark and print the figures; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of model.pb in MiB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="drem-bench-"))
    clamd = Clamd(work / "clamd")
    server: LiveServer | None = None
    try:
        clamd_url = clamd.start()
        t0 = time.perf_counter()
        path = build_model(work, args.size_mb * MIB)
        size = path.stat().st_size
        print(f"model file: {path.name}, {size / MIB:.1f} MiB (model.pb {args.size_mb} MiB random), "
              f"built in {time.perf_counter() - t0:.1f} s")

        alone_s = scan_alone(clamd_url, path)
        clamd.stop()  # a new clamd forgets its clean-file cache: the server scans new content
        clamd.start()

        server = LiveServer(work / "instance", clamd_url=clamd_url).start()
        worker = server.worker_pid()
        with RssSampler(worker, interval_s=0.02) as rss, LatencyProbe(server.url) as probe:
            phases = end_to_end(server, path)
        growth = rss.growth

        e2e_mbs = size / MIB / phases["available"]
        alone_mbs = size / MIB / alone_s
        ratio = e2e_mbs / alone_mbs
        print()
        print(f"clamd INSTREAM alone      {alone_s:6.2f} s  {alone_mbs:7.1f} MB/s")
        print("end to end (upload start -> available)")
        print(f"  upload answered 201     {phases['upload']:6.2f} s")
        print(f"  scan finished           {phases['scanned']:6.2f} s")
        print(f"  available               {phases['available']:6.2f} s  {e2e_mbs:7.1f} MB/s")
        print(f"throughput ratio e2e/clamd  {ratio:.2f}   (target >= {TARGET_RATIO})")
        print(f"worker RSS growth (peak)    {growth / MIB:.1f} MB  (baseline {rss.baseline / MIB:.0f} MB, "
              f"{rss.samples} samples; target <= {TARGET_RSS_MB} MB)")
        print(f"worst /healthz latency      {probe.worst * 1000:.0f} ms over {probe.count} probes "
              f"(asked {probe.worst_at:.2f} s after the upload started)")
        ok = ratio >= TARGET_RATIO and growth <= TARGET_RSS_MB * MIB
        print("RESULT: " + ("targets met" if ok else "TARGET MISSED"))
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        clamd.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
