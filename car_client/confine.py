"""Confine a process that runs a stranger's code: no root, no writes outside its scratch
folder, no network.

Shared by the car's model process (:mod:`car_client.pilots.model_process`, which reads
the Python installation and the system folders after it confines itself) and drem's
reward-function worker (:mod:`drem.training.reward_worker`, which reads nothing at all:
``read_roots=()``, no scratch folder). Plain Python (ctypes), no drem import, so both
ends may import it.

:func:`confine` is called by the confined process itself, after it has imported what it
needs and before it reads anything of the stranger's, in this order:

1. as root: drop every group, then ``setgid``/``setuid`` to ``user`` (``nobody`` by
   default; :data:`USER_ENV` names another), and check root cannot come back;
2. ``PR_SET_NO_NEW_PRIVS``: no set-uid program can give privileges back;
3. Landlock (Linux 5.13+, no privileges needed): writes, file creation and removal
   are allowed beneath the scratch folder only (nowhere without one); reads beneath
   the scratch folder and ``read_roots`` only (by default the Python installation and
   the system folders ``/usr``, ``/lib``, ``/etc``, ``/proc``, ``/sys``, ``/dev``), so
   the car's token and other files are out of reach; programs run from the system
   folders only (when they are read roots); where the kernel has Landlock ABI 4+, no
   TCP connect or bind at all; with ABI 6+, no signals to and no abstract unix sockets
   of processes outside the sandbox;
4. no core dumps; umask 077; the working folder is the scratch folder (``/`` without one).

Without Landlock (an old kernel) a root car still drops to ``user``, which may then
write only where that user may (world-writable folders such as ``/tmp``); a car that
is not root and has no Landlock cannot be confined, and :func:`confine` raises
:class:`ConfinementError` so no model runs unconfined.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import selectors
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["USER_ENV", "ConfinementError", "confine", "landlock_abi", "leave_network",
           "read_exact"]

#: Environment variable naming the user the model process runs as when the car is root.
USER_ENV = "CAR_MODEL_USER"
DEFAULT_USER = "nobody"

_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWIPC, _CLONE_NEWNET = 0x08000000, 0x40000000
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_MAKE_SYM, _REFER, _TRUNCATE = 1 << 12, 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/etc", "/proc", "/sys", "/dev", "/opt/aws")
_SYSTEM_EXEC = ("/usr", "/lib", "/lib64", "/lib32")


class ConfinementError(RuntimeError):
    """The model process could not be confined; no model may run."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (1, 2, ...), or 0 when it has no Landlock."""
    abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                          ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _drop_root(user: str) -> None:
    try:
        pw = pwd.getpwnam(user)
    except KeyError as exc:
        raise ConfinementError(f"no user {user!r} to run the model as") from exc
    if pw.pw_uid == 0:
        raise ConfinementError(f"{USER_ENV} names a root user ({user!r})")
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise ConfinementError("root privileges came back after setuid")


def _handled_fs(abi: int) -> int:
    rights = (_EXECUTE | _WRITE_FILE | _READ_FILE | _READ_DIR | _REMOVE_DIR | _REMOVE_FILE
              | _MAKE_CHAR | _MAKE_DIR | _MAKE_REG | _MAKE_SOCK | _MAKE_FIFO | _MAKE_BLOCK
              | _MAKE_SYM)
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    return rights


def _add_path(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a folder this system does not have
    try:
        if not os.path.isdir(path):
            rights &= _FILE_ONLY
        attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                        attr, ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise ConfinementError(f"Landlock refused a rule for {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _landlock(scratch: Path | None, abi: int, read_roots: Sequence[str]) -> None:
    libc = _libc()
    handled = _handled_fs(abi)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled, net)
    else:
        attr = struct.pack("=Q", handled)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(_SYS_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise ConfinementError(f"Landlock: {os.strerror(ctypes.get_errno())}")
    try:
        read = _READ_FILE | _READ_DIR
        for root in read_roots:
            rights = read | (_EXECUTE if root in _SYSTEM_EXEC else 0)
            _add_path(libc, ruleset, root, rights)
        _add_path(libc, ruleset, "/dev/null", _READ_FILE | _WRITE_FILE)
        if scratch is not None:
            _add_path(libc, ruleset, str(scratch), handled & ~_EXECUTE)
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise ConfinementError(f"Landlock: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)


def _read_roots() -> list[str]:
    roots = list(_SYSTEM_READ)
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path):
        if p and os.path.isdir(p):
            roots.append(os.path.realpath(p))
    return list(dict.fromkeys(roots))


def leave_network() -> bool:
    """Move this process into new, empty network and System V IPC namespaces (no
    interface but a loopback that is down; no shared memory segments or message queues
    of other processes). Needs root (``CAP_SYS_ADMIN``): call it before :func:`confine`
    drops root. Returns True when it worked, False when the process is not root or the
    kernel or container refused (then only Landlock keeps the process off the network)."""
    if os.geteuid() != 0:
        return False
    return _libc().unshare(ctypes.c_int(_CLONE_NEWNET | _CLONE_NEWIPC)) == 0


def confine(scratch: str | os.PathLike | None, user: str | None = None,
            read_roots: Sequence[str] | None = None) -> dict:
    """Confine this process (see the module docstring). Call it once, before loading.

    scratch: the only folder the process may write (created by the parent, owned by
    ``user`` when the process is root), or None for no writable folder at all.
    user: whom to become when root (default ``$CAR_MODEL_USER`` or ``nobody``).
    read_roots: folders (and files) the process may still read; None for the Python
    installation and the system folders, ``()`` for nothing (the caller imported all
    it needs before).

    Returns ``{"uid": int, "landlock_abi": int}``. Raises :class:`ConfinementError`
    when the process cannot be confined."""
    scratch = Path(scratch).resolve() if scratch is not None else None
    dropped = os.geteuid() == 0
    if dropped:
        _drop_root(user or os.environ.get(USER_ENV) or DEFAULT_USER)
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise ConfinementError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    abi = landlock_abi()
    if abi:
        _landlock(scratch, abi, _read_roots() if read_roots is None else list(read_roots))
    elif not dropped:
        raise ConfinementError(
            "this kernel has no Landlock and the process does not run as root: the confined "
            "process cannot be kept from writing files (Linux 5.13+ has Landlock)")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o077)
    os.chdir(scratch if scratch is not None else "/")
    return {"uid": os.getuid(), "landlock_abi": abi}


def read_exact(fd: int, n: int, timeout_s: float, who: str = "the confined process") -> bytes:
    """Read exactly ``n`` bytes from the pipe ``fd`` of a confined child, waiting at most
    ``timeout_s`` seconds in all (a child that trickles bytes gets no more time).

    Raises ``RuntimeError`` naming ``who`` when the child does not answer in time or
    closes the pipe (it ended)."""
    chunks, got = [], 0
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise RuntimeError(f"{who} did not answer within {timeout_s:g} s")
            chunk = os.read(fd, n - got)
            if not chunk:
                raise RuntimeError(f"{who} ended unexpectedly")
            chunks.append(chunk)
            got += len(chunk)
    return b"".join(chunks)
