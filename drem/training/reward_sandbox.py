"""Run a racer's DeepRacer ``reward_function(params)`` in a confined worker process.

A reward function is a stranger's Python code on the server. :class:`RewardSandbox`
starts one worker process per function (:mod:`drem.training.reward_worker`), hands it
the source once and then batches of ``params`` dicts over a pipe, so RL training pays
one round trip per batch, not per step. What is enforced where:

| threat | stopped by |
|---|---|
| imports other than ``math``/``numpy``; ``open``, ``eval``, ``exec``, ``getattr``, ``__import__``, dunder and frame attributes | :mod:`drem.training.reward_rules`: refused at load with the line (a clear message, not the boundary) |
| reading or writing any file, running a program | Landlock in the worker: nothing readable, writable or executable; no new file descriptor (``RLIMIT_NOFILE``), no file size |
| network | Landlock (no TCP connect/bind), no new descriptor (so no socket at all), and, when drem runs as root, an empty network namespace |
| other processes | runs as ``nobody`` when drem is root; no new process or thread (``RLIMIT_NPROC`` 0); Landlock scopes signals and abstract unix sockets; ``PR_SET_NO_NEW_PRIVS`` |
| an endless loop | a CPU timer per call (``call_s``), the wall clock per batch (the parent kills the worker), ``RLIMIT_CPU`` for the worker's life (``cpu_s``) |
| a huge allocation | ``RLIMIT_AS`` (``memory_mb``): the allocation fails with ``MemoryError`` |
| raising, returning a string, NaN or infinity | reported with the exception, line and the call's index |

Every failure of the racer's code raises :class:`RewardFunctionError` with a message
for the racer (a training job fails with it) and stops the worker; nothing else is
harmed. The sandbox is then closed: later calls raise the same error.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from car_client.confine import read_exact
from drem.training.reward_params import check_constants, check_params

__all__ = ["RewardLimits", "RewardFunctionError", "RewardSandbox", "MAX_SOURCE_CHARS"]

#: Longest reward function source accepted (characters).
MAX_SOURCE_CHARS = 100_000
#: Longest wait for the worker to start, confine itself and load the function (s).
START_TIMEOUT_S = 30.0
_MAX_REPLY = 16 * 1024 * 1024
_PIPE_BYTES = 1024 * 1024
_WHO = "the reward function's worker"
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0"}


@dataclass(frozen=True)
class RewardLimits:
    """Limits of one worker: ``memory_mb`` address space (MiB), ``cpu_s`` CPU seconds
    for its whole life (a training job's budget), ``call_s`` CPU seconds per call, and
    ``batch_margin_s`` wall seconds added to ``call_s`` times the batch size before the
    parent kills a worker that does not answer."""

    memory_mb: int = 512
    cpu_s: int = 3600
    call_s: float = 0.1
    batch_margin_s: float = 2.0

    def __post_init__(self) -> None:
        if not (64 <= self.memory_mb <= 64 * 1024 and 1 <= self.cpu_s <= 7 * 86400
                and 0.001 <= self.call_s <= 60 and self.batch_margin_s > 0):
            raise ValueError(f"reward sandbox limits out of range: {self}")


class RewardFunctionError(Exception):
    """The racer's reward function failed (message for the racer). ``index``: the call
    in the batch that failed, when one did; ``log``: what the function printed."""

    def __init__(self, message: str, index: int | None = None, log: str = "") -> None:
        super().__init__(message)
        self.index = index
        self.log = log


class RewardSandbox:
    """One racer's ``reward_function`` loaded in a confined worker process.

    source: Python source defining ``reward_function(params)`` (at most
    :data:`MAX_SOURCE_CHARS`); constants: the per-track params ``track_width`` (m),
    ``track_length`` (m) and ``waypoints`` ``[(x, y), ...]`` (m), sent once and added to
    every call; limits: :class:`RewardLimits`.

    Raises ``ValueError`` for bad constants or source that is not a string or too long,
    :class:`RewardFunctionError` when the function does not load (syntax, refused
    import or name, its module raises or loops), ``RuntimeError`` when the worker
    cannot be started or confined (a server fault, not the racer's). Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, source: str, constants: Mapping,
                 limits: RewardLimits | None = None) -> None:
        if not isinstance(source, str):
            raise ValueError("the reward function must be Python source text")
        if len(source) > MAX_SOURCE_CHARS:
            raise ValueError(f"the reward function is longer than {MAX_SOURCE_CHARS} characters")
        self.constants = check_constants(constants)
        self.limits = limits or RewardLimits()
        self.confinement: dict = {}
        self.log = ""
        self._failed: RewardFunctionError | None = None
        lim = self.limits
        self._proc = subprocess.Popen(
            [sys.executable, "-s", "-m", "drem.training.reward_worker", str(lim.memory_mb),
             str(lim.cpu_s), repr(lim.call_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/", env={**_ENV, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            close_fds=True)
        self._finalizer = weakref.finalize(self, _stop, self._proc)
        for stream in (self._proc.stdin, self._proc.stdout):
            _widen(stream.fileno())
        try:
            self._send({"source": source, "constants": self.constants}, START_TIMEOUT_S)
            hello = self._reply(START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        if not hello.get("ok"):
            self.close()
            error = str(hello.get("error") or "the reward function did not load")
            if hello.get("confinement_failed"):
                raise RuntimeError(error)
            raise RewardFunctionError(error, log=str(hello.get("log") or ""))
        self.confinement = hello.get("confinement") or {}
        self.log = str(hello.get("log") or "")

    def __enter__(self) -> RewardSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reward(self, params: Mapping) -> float:
        """The reward for one step (see :meth:`rewards`)."""
        return self.rewards([params])[0]

    def rewards(self, batch: Sequence[Mapping], checked: bool = False) -> list[float]:
        """Call the function once per step of ``batch`` and return the rewards, in order.

        Each step holds DeepRacer's per-step keys (:data:`~drem.training.reward_params.STEP_KEYS`,
        optionally the object-avoidance keys); the per-track constants are added by the
        worker. ``checked``: the steps were built by drem's simulator and need no check.
        Raises ``ValueError`` for a bad step (nothing is sent), :class:`RewardFunctionError`
        when the function fails on a step (the sandbox is then closed), ``RuntimeError``
        when the worker dies for another reason."""
        if self._failed is not None:
            raise self._failed
        steps = list(batch) if checked else [check_params(p, self.constants) for p in batch]
        if not steps:
            return []
        lim = self.limits
        deadline_s = lim.batch_margin_s + lim.call_s * len(steps)
        keys = list(steps[0])
        if any(step.keys() != steps[0].keys() for step in steps):
            raise ValueError("every step of a batch must have the same params keys")
        try:
            self._send({"keys": keys, "rows": [[step[k] for k in keys] for step in steps]},
                       deadline_s)
            reply = self._reply(deadline_s)
        except TimeoutError as exc:
            raise self._fail(RewardFunctionError(
                f"reward_function did not finish {len(steps)} calls within {deadline_s:g} s "
                "and was stopped")) from exc
        except RuntimeError as exc:
            raise self._fail(RewardFunctionError(self._death(str(exc)))) from exc
        if not reply.get("ok"):
            index = reply.get("index")
            raise self._fail(RewardFunctionError(
                str(reply.get("error") or "reward_function failed"),
                index if isinstance(index, int) and not isinstance(index, bool) else None,
                str(reply.get("log") or "")))
        rewards = reply.get("rewards")
        if not isinstance(rewards, list) or len(rewards) != len(steps) or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r)
                for r in rewards):
            raise self._fail(RewardFunctionError(f"{_WHO} sent a malformed reply"))
        self.log = str(reply.get("log") or "")
        return [float(r) for r in rewards]

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        self._finalizer()

    # ------------------------------------------------------------------ plumbing

    def _fail(self, error: RewardFunctionError) -> RewardFunctionError:
        """Remember ``error`` for later calls, stop the worker, and return it to raise."""
        self._failed = error
        self.close()
        return error

    def _death(self, detail: str) -> str:
        try:
            code = self._proc.wait(2.0)
        except subprocess.TimeoutExpired:
            return f"{_WHO} failed: {detail}"
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return (f"reward_function used up the worker's {self.limits.cpu_s} s of CPU time "
                    "and was stopped")
        if code < 0:
            return f"{_WHO} was killed by {signal.Signals(-code).name}"
        return f"{_WHO} ended (exit code {code})"

    def _send(self, value: dict, timeout_s: float) -> None:
        body = json.dumps(value, allow_nan=False).encode("utf-8")
        _write_all(self._proc.stdin.fileno(), struct.pack("<I", len(body)) + body, timeout_s)

    def _reply(self, timeout_s: float) -> dict:
        fd = self._proc.stdout.fileno()
        try:
            (length,) = struct.unpack("<I", read_exact(fd, 4, timeout_s, _WHO))
            if length > _MAX_REPLY:
                raise RuntimeError(f"{_WHO} sent an oversized reply")
            body = read_exact(fd, length, timeout_s, _WHO)
        except RuntimeError as exc:
            if "did not answer" in str(exc):
                raise TimeoutError(str(exc)) from exc
            raise
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"{_WHO} sent a reply that is not JSON") from exc
        if not isinstance(value, dict):
            raise RuntimeError(f"{_WHO} sent a reply that is not an object")
        return value


def _write_all(fd: int, data: bytes, timeout_s: float) -> None:
    """Write ``data`` to the worker's pipe within ``timeout_s`` (a worker that stops
    reading cannot block the parent). Raises ``TimeoutError`` or ``RuntimeError``."""
    deadline = time.monotonic() + timeout_s
    view = memoryview(data)
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_WRITE)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"{_WHO} did not take its input within {timeout_s:g} s")
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise RuntimeError(f"{_WHO} ended: {exc}") from exc


def _widen(fd: int) -> None:
    """Give a pipe a 1 MiB buffer (Linux's default limit) so a batch of steps crosses in
    one or two writes, not a context switch per 64 KiB."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except OSError:
        pass  # a lower /proc/sys/fs/pipe-max-size: the default buffer works, only slower


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10.0)
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass

