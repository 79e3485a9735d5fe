"""The process harness of the demo, the end-to-end tests and the benchmarks.

One place for what each of them needs to run real processes side by side on one
machine: free TCP ports (:func:`free_port`, :func:`free_ports`,
:func:`free_port_pairs`), "poll until it holds" (:func:`wait_until`), a subprocess
with its log file that is stopped with SIGTERM and then SIGKILL of its whole process
tree (:class:`ManagedProcess`), the process tree of a pid (:func:`process_tree`,
found with psutil) and resident memory (:func:`rss_bytes`).

No pytest imports here: ``drem demo``, ``tests/e2e`` and ``bench/`` use this module.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from drem.platform.config import REPO_ROOT


class WaitTimeout(TimeoutError, AssertionError):
    """:func:`wait_until` gave up; the message names what it waited for (and more, e.g. a
    log tail). An AssertionError too, so a test that times out reads as a failed check."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing is bound to ``host:port`` right now."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` different free TCP ports on 127.0.0.1 (all bound at once while chosen)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports P in 20000..29999 with P and P+10000 free (SeaweedFS binds its gRPC
    port at P+10000); no two chosen ports are adjacent. RuntimeError when none are left."""
    chosen: list[int] = []
    candidates = list(range(20000, 30000))
    random.shuffle(candidates)
    for port in candidates:
        if all(abs(port - c) > 1 for c in chosen) and port_free(port) and port_free(port + 10000):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free port pairs in 20000..29999")


def wait_until(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "", interval_s: float = 0.05,
               on_timeout: Callable[[], str] | None = None) -> Any:
    """Call ``check()`` every ``interval_s`` seconds until it returns something truthy and
    return that. After ``timeout_s`` seconds raise :class:`WaitTimeout` naming ``what``,
    followed by ``on_timeout()``'s text (e.g. a log tail). Exceptions of ``check`` propagate."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what or check}{extra}")
        time.sleep(interval_s)


def process_tree(pid: int | None) -> list[psutil.Process]:
    """Process ``pid`` followed by all its descendants (children first found first); an
    empty list when it does not exist."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def child_pids(pid: int | None) -> list[int]:
    """Pids of the direct children of ``pid`` (e.g. a gunicorn master's workers), sorted."""
    try:
        return sorted(p.pid for p in psutil.Process(pid).children()) if pid is not None else []
    except psutil.NoSuchProcess:
        return []


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes; psutil.NoSuchProcess when it is gone."""
    return psutil.Process(pid).memory_info().rss


def alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The processes of ``procs`` still running (zombies count as gone)."""
    out = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
    return out


def terminate(procs: Iterable[psutil.Process], timeout_s: float = 15.0) -> list[psutil.Process]:
    """SIGTERM each process, wait up to ``timeout_s`` seconds, SIGKILL what is left;
    returns the processes that had to be killed."""
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, left = psutil.wait_procs(procs, timeout=timeout_s)
    kill(left)
    return left


def kill(procs: Iterable[psutil.Process]) -> None:
    """SIGKILL each process and wait (5 s at most) until it is gone."""
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)


class ManagedProcess:
    """One subprocess with its log file; :meth:`stop` ends it and everything it started.

    Args:
        name: for messages ("server", "web1", a car's hostname).
        args: the command line.
        log: file its stdout and stderr are appended to (a ``==== starting`` line marks
            each start).
        env: its whole environment.
        cwd: working folder (default: the repository root, where ``wsgi.py`` is).

    It runs in its own session (a Ctrl-C in the terminal reaches only the parent, which
    stops its processes in order).
    """

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str], cwd: Path = REPO_ROOT):
        self.name, self.args, self.log_path, self.env, self.cwd = name, list(args), Path(log), env, cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self._tree: dict[int, psutil.Process] = {}

    def start(self) -> ManagedProcess:
        """Start the process (returns at once). A running process is left alone."""
        if self.alive:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== starting {' '.join(self.args)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        self._tree = {}
        return self

    @property
    def pid(self) -> int | None:
        """Pid of the process last started (None before the first start)."""
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once it ended (negative: killed by that signal), else None."""
        return None if self.popen is None else self.popen.poll()

    @property
    def rss(self) -> int:
        """Resident memory of the process itself, in bytes."""
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        return rss_bytes(self.popen.pid)

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants now, plus any seen before that still run (a
        child whose parent died is reparented, but it is still ours)."""
        for proc in process_tree(self.pid if self.alive else None):
            self._tree.setdefault(proc.pid, proc)
        return alive(self._tree.values())

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the process, wait up to ``timeout_s`` seconds for it to end, then
        SIGKILL every process of its tree that is left. Returns the exit status (None
        when it was never started)."""
        if self.popen is None:
            return None
        tree = self.tree()
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.note(f"{self.name} ignored SIGTERM for {timeout_s:g} s: SIGKILL")
        kill(alive(tree + self.tree()))
        return self.popen.wait()

    def terminate(self) -> None:
        """SIGTERM the process without waiting (to stop many at once; :meth:`stop` then
        waits for each and kills what is left)."""
        self.tree()
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)

    def kill9(self) -> None:
        """SIGKILL the process and its whole tree at once (a crash, a power cut)."""
        if self.popen is None:
            return
        kill(self.tree())
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for the process to end on its own; its exit status (TimeoutExpired after
        ``timeout_s``)."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.wait(timeout_s)

    def log_text(self) -> str:
        """Everything the process printed so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def note(self, message: str) -> None:
        """Append a ``==== message`` line to the log."""
        with contextlib.suppress(OSError), open(self.log_path, "a") as log:
            log.write(f"==== {message}\n")
