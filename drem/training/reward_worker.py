"""The reward worker: a confined process that runs one racer's reward function.

Started by :class:`drem.training.reward_sandbox.RewardSandbox` as
``python -s -m drem.training.reward_worker MEMORY_MB CPU_S CALL_S``. :func:`main`
imports all it will ever need (``math``, ``numpy``), then :func:`lock_down` closes
the process before a byte of the racer's code arrives:

1. when root: new empty network and IPC namespaces (:func:`car_client.confine.leave_network`);
2. :func:`car_client.confine.confine` with no scratch folder and nothing readable:
   as root it becomes ``nobody``; ``PR_SET_NO_NEW_PRIVS``; Landlock: no file may be
   read, written or run, no TCP connect or bind, no signals to other processes;
3. resource limits: address space ``MEMORY_MB`` MiB, ``CPU_S`` s of CPU time in all
   (SIGXCPU, then SIGKILL one second later), no new file descriptor (the limit is the
   five it holds: the null device on 0-2 and the two pipes), no new process or thread,
   no file size, no locked memory, no message queues.

Each call runs under a CPU timer of ``CALL_S`` seconds. The racer's source runs with
:func:`drem.training.reward_rules.restricted_builtins` after
:func:`~drem.training.reward_rules.check_source`.

Wire format, both ways a little-endian ``uint32`` length and a UTF-8 JSON object
(nothing is unpickled): first ``{"source", "constants"}`` -> ``{"ok": true,
"confinement"}`` or ``{"ok": false, "error"}``; then a batch of steps as columns,
``{"keys": [key, ...], "rows": [[value, ...], ...]}`` ->
``{"ok": true, "rewards": [float, ...], "log": str}`` or ``{"ok": false, "error",
"index"}``. The parent trusts no byte of it (the racer's code can write to the pipe).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import struct
import sys

import numpy
import numpy.linalg
import numpy.random

from car_client.confine import ConfinementError, confine, leave_network
from drem.training.reward_rules import RuleError, check_source, restricted_builtins

#: Largest message either side accepts (bytes).
MAX_MESSAGE = 64 * 1024 * 1024
#: Most printed characters returned per batch (the rest is dropped).
MAX_LOG = 4000
_IN_FD, _OUT_FD = 3, 4
_NUMBERS = (int, float, numpy.integer, numpy.floating)


class _BadReturn(Exception):
    """The function returned something that is not a finite number."""


class _CallTimeout(BaseException):  # noqa: N818 - not an error of ours; BaseException so `except Exception` in racer code cannot swallow it
    """The per-call CPU timer fired."""


def _on_timer(signum, frame):
    raise _CallTimeout


def lock_down(memory_mb: int, cpu_s: int) -> dict:
    """Confine this process for good (steps 1-3 of the module docstring).

    memory_mb: address space limit (MiB); cpu_s: CPU seconds for the process's life.
    Returns ``{"uid", "landlock_abi", "network_namespace"}``. Raises
    :class:`~car_client.confine.ConfinementError` when it cannot be confined."""
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    extra = [fd for fd in fds if fd > _OUT_FD]
    for fd in extra:
        try:
            os.close(fd)
        except OSError:
            pass  # the listing's own descriptor, gone already
    used_kb = _size_kb()
    private_net = leave_network()
    info = confine(None, read_roots=())
    if used_kb >= memory_mb * 1024:
        raise ConfinementError(f"the worker already uses {used_kb // 1024} MiB, more than its "
                               f"{memory_mb} MiB limit")
    limits = [(resource.RLIMIT_AS, memory_mb * 1024 * 1024), (resource.RLIMIT_NOFILE, _OUT_FD + 1),
              (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_FSIZE, 0),
              (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0)]
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    return {**info, "network_namespace": private_net}


def _size_kb() -> int:
    """This process's address space now (KiB), from ``/proc/self/status``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    return 0


def _recv() -> dict | None:
    header = _read(4)
    if header is None:
        return None
    (length,) = struct.unpack("<I", header)
    if length > MAX_MESSAGE:
        return None
    body = _read(length)
    return None if body is None else json.loads(body.decode("utf-8"))


def _read(n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(_IN_FD, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _send(value: dict) -> None:
    body = json.dumps(value, allow_nan=False).encode("utf-8")
    data = struct.pack("<I", len(body)) + body
    while data:
        data = data[os.write(_OUT_FD, data):]


def _where(exc: BaseException) -> str:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "reward_function.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _describe(exc: BaseException, call_s: float, memory_mb: int,
              who: str = "reward_function") -> str:
    """A message for the racer about ``exc``, raised by their code."""
    if isinstance(exc, _CallTimeout):
        return f"{who} used more than {call_s:g} s of CPU time on one call (an endless loop?)"
    if isinstance(exc, MemoryError):
        return f"{who} ran out of memory (the limit is {memory_mb} MiB){_where(exc)}"
    if isinstance(exc, RecursionError):
        return f"{who} recursed too deeply{_where(exc)}"
    return f"{who} raised {type(exc).__name__}: {exc}{_where(exc)}"


def _reward(fn, step: dict) -> float:
    value = fn(step)
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, _NUMBERS):
        raise _BadReturn(f"reward_function returned {value!r:.80} (a {type(value).__name__}), "
                         "not a number")
    reward = float(value)
    if not math.isfinite(reward):
        raise _BadReturn(f"reward_function returned {reward}: the reward must be a finite "
                         "number")
    return reward


class _Log:
    """``print`` for the racer's code: keeps up to :data:`MAX_LOG` characters per batch."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def print(self, *args, sep=" ", end="\n", **_ignored) -> None:
        if self.size < MAX_LOG:
            text = str(sep).join(str(a) for a in args) + str(end)
            self.parts.append(text[:MAX_LOG - self.size])
            self.size += len(self.parts[-1])

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


def _timed(call_s: float, fn, *args):
    signal.setitimer(signal.ITIMER_PROF, call_s)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def _load(message: dict, log: _Log, call_s: float):
    source = message.get("source")
    if not isinstance(source, str):
        raise RuleError("no source")
    tree = check_source(source)
    namespace = {"__builtins__": restricted_builtins(log.print), "__name__": "reward_function"}
    code = compile(tree, "reward_function.py", "exec")
    _timed(max(call_s, 1.0), exec, code, namespace)
    fn = namespace.get("reward_function")
    if not callable(fn):
        raise RuleError("the source defines no function reward_function(params)")
    return fn


def _serve(fn, constants: dict, log: _Log, call_s: float, memory_mb: int) -> None:
    waypoints = [tuple(p) for p in constants["waypoints"]]
    width, length = constants["track_width"], constants["track_length"]
    while True:
        message = _recv()
        if message is None:
            return
        rewards = []
        keys = message["keys"]
        for index, row in enumerate(message["rows"]):
            step = dict(zip(keys, row, strict=True))
            step.update(waypoints=list(waypoints), track_width=width, track_length=length)
            try:
                rewards.append(_timed(call_s, _reward, fn, step))
            except _BadReturn as exc:
                _send({"ok": False, "error": str(exc), "index": index, "log": log.take()})
                return
            except BaseException as exc:  # noqa: BLE001 - anything the racer's code does is reported
                _send({"ok": False, "error": _describe(exc, call_s, memory_mb), "index": index,
                       "log": log.take()})
                return
        _send({"ok": True, "rewards": rewards, "log": log.take()})


def main(argv: list[str]) -> int:
    """Run the worker; ``argv`` is ``[MEMORY_MB, CPU_S, CALL_S]``. Returns the exit code."""
    os.dup2(0, _IN_FD)
    os.dup2(1, _OUT_FD)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    memory_mb, cpu_s, call_s = int(argv[0]), int(argv[1]), float(argv[2])
    signal.signal(signal.SIGPROF, _on_timer)
    try:
        confinement = lock_down(memory_mb, cpu_s)
    except (ConfinementError, OSError) as exc:
        _send({"ok": False, "error": f"cannot confine the reward worker: {exc}",
               "confinement_failed": True})
        return 2
    message = _recv()
    if message is None:
        return 0
    log = _Log()
    try:
        fn = _load(message, log, call_s)
    except SyntaxError as exc:
        _send({"ok": False, "error": f"the reward function does not parse: {exc.msg} "
                                     f"(line {exc.lineno})"})
        return 1
    except RuleError as exc:
        _send({"ok": False, "error": str(exc)})
        return 1
    except BaseException as exc:  # noqa: BLE001 - the module body is the racer's code
        _send({"ok": False, "error": _describe(exc, max(call_s, 1.0), memory_mb,
                                               "the reward function's module"),
               "log": log.take()})
        return 1
    _send({"ok": True, "confinement": confinement, "log": log.take()})
    _serve(fn, message["constants"], log, call_s, memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
