"""The scale-out layout of a demo event, on this machine: several web processes behind a
sticky reverse proxy, ``drem worker`` processes and SeaweedFS (S3).

Production runs several one-worker gunicorn processes (``gunicorn -k gevent -w 1``),
a Redis message queue between them and a reverse proxy with sticky sessions in front
(docs/deployment.md). :class:`WebCluster` starts exactly that: N gunicorn processes,
each on its own port, and HAProxy rendered from ``deploy/haproxy.cfg`` (the file the
compose stack uses), so the demo exercises the shipped proxy configuration.
:class:`ScaleoutServices` adds what ``--scaleout`` needs beyond it: SeaweedFS through
``scripts/seaweedfs.sh`` (``STORAGE_URL=s3://…``) and ``drem worker`` processes with
``BACKGROUND_JOBS=external`` on the web processes; the demo's clamd then listens on a
TCP port too (a clamd shared over the network, :class:`drem.demo.launchers.Clamd`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drem.demo.launchers import run_script, server_proc, wait_healthy
from drem.demo.processes import ManagedProcess, child_pids, free_port, free_port_pairs
from drem.platform.config import REPO_ROOT

HAPROXY_CFG = REPO_ROOT / "deploy" / "haproxy.cfg"


def find_haproxy() -> str:
    """Path of the haproxy binary; RuntimeError naming the fix when it is missing."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not found:
        raise RuntimeError("haproxy is not installed: run scripts/system-packages.sh (apt-get install haproxy)")
    return found


def render_haproxy(bind: str, backends: list[tuple[str, str]], source: Path = HAPROXY_CFG) -> str:
    """``deploy/haproxy.cfg`` with its ``drem:bind`` line bound to ``bind`` and its
    ``drem:server`` lines replaced by ``backends`` (``[(name, "host:port")]``)."""
    out, servers_done = [], False
    for line in source.read_text().splitlines():
        if line.rstrip().endswith("# drem:bind"):
            out.append(f"    bind {bind}")
        elif line.rstrip().endswith("# drem:server"):
            if not servers_done:
                out.extend(f"    server {name} {addr} cookie {name}" for name, addr in backends)
                servers_done = True
        else:
            out.append(line)
    if not servers_done:
        raise RuntimeError(f"{source} has no '# drem:server' lines")
    return "\n".join(out) + "\n"


@dataclass
class WebCluster:
    """N one-worker gunicorn processes on their own ports behind HAProxy on ``port``."""

    processes: int
    port: int
    env: dict
    logs: Path
    host: str = "127.0.0.1"
    webs: list[ManagedProcess] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)
    proxy: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host == '0.0.0.0' else self.host}:{self.port}"

    def start(self) -> WebCluster:
        """Start every web process, wait until each answers, then the proxy."""
        haproxy = find_haproxy()
        backends = []
        for i in range(self.processes):
            port = free_port()
            web = server_proc(port, self.env, self.logs / f"web{i + 1}.log", 1, "127.0.0.1", f"web{i + 1}")
            self.webs.append(web.start())
            self.web_urls.append(f"http://127.0.0.1:{port}")
            backends.append((web.name, f"127.0.0.1:{port}"))
        for web, url in zip(self.webs, self.web_urls, strict=True):
            wait_healthy(url, web)
        cfg = self.logs / "haproxy.cfg"
        cfg.write_text(render_haproxy(f"{self.host}:{self.port}", backends))
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejects {cfg}:\n{check.stdout}{check.stderr}")
        self.proxy = ManagedProcess("haproxy", [haproxy, "-db", "-f", str(cfg)], self.logs / "haproxy.log",
                                    dict(os.environ)).start()
        wait_healthy(self.url, self.proxy)
        return self

    def alive(self) -> bool:
        """True while the proxy and at least one web process run."""
        return self.proxy is not None and self.proxy.alive and any(w.alive for w in self.webs)

    def worker_pids(self) -> dict[str, list[int]]:
        """``{web name: [gunicorn worker pids]}`` (the children of each gunicorn master)."""
        return {w.name: child_pids(w.pid) for w in self.webs if w.alive}

    def stop(self) -> None:
        """Stop the proxy, then every web process (SIGTERM, then SIGKILL of its tree)."""
        if self.proxy is not None:
            self.proxy.stop()
        for web in self.webs:
            web.stop()


@dataclass
class ScaleoutServices:
    """SeaweedFS and ``drem worker`` processes for ``--scaleout`` (its TCP clamd is a
    :class:`~drem.demo.launchers.Clamd` of the demo event)."""

    folder: Path
    job_workers: int = 1
    seaweed_env: dict = field(default_factory=dict)
    workers: list[ManagedProcess] = field(default_factory=list)

    def start_storage(self, bucket: str = "drem-demo") -> dict:
        """Start SeaweedFS in ``folder/seaweedfs`` on free ports; returns the server's
        settings (``STORAGE_URL`` and the ``AWS_*`` variables)."""
        ports = free_port_pairs(5)
        env = dict(os.environ, SEAWEEDFS_S3_PORT=str(ports[0]), SEAWEEDFS_MASTER_PORT=str(ports[1]),
                   SEAWEEDFS_VOLUME_PORT=str(ports[2]), SEAWEEDFS_FILER_PORT=str(ports[3]),
                   SEAWEEDFS_ADMIN_PORT=str(ports[4]), SEAWEEDFS_BUCKETS=bucket)
        out = run_script("seaweedfs.sh", "start", self.folder / "seaweedfs", env)
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.seaweed_env = env
        return values | {"STORAGE_URL": f"s3://{bucket}/models"}

    def start_workers(self, env: dict, logs: Path) -> None:
        """``drem worker`` processes (model scans, command expiry, retention)."""
        for i in range(self.job_workers):
            proc = ManagedProcess(f"worker{i + 1}", [sys.executable, "-m", "drem", "worker", "--poll", "1"],
                                  logs / f"worker{i + 1}.log", env)
            self.workers.append(proc.start())

    def stop(self) -> None:
        """Stop the ``drem worker`` processes and SeaweedFS."""
        for proc in self.workers:
            proc.stop()
        if self.seaweed_env:
            subprocess.run([str(REPO_ROOT / "scripts" / "seaweedfs.sh"), "stop", str(self.folder / "seaweedfs")],
                           env=self.seaweed_env, capture_output=True, check=False)
