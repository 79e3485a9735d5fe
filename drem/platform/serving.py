"""How drem is served: gunicorn's settings (a gunicorn config module) and the process
limits they need. One place for ``drem run``, the Dockerfile, ``deploy/compose.yaml`` and
the scale-out documentation (docs/deployment.md, "Capacity").

Use it with ``gunicorn -c python:drem.platform.serving --bind HOST:PORT wsgi:app``:
gunicorn reads the module-level settings below (command-line options still win).

- one gevent worker per process (websockets in gevent; scale out with more processes);
- ``worker_connections`` :data:`WORKER_CONNECTIONS` (gunicorn's default of 1,000 cannot
  take 1,000 displays plus the consoles, cars and lap timers: the next connection hangs
  unanswered);
- the open-files limit raised towards that many sockets (:func:`raise_open_files`).

``wsgi.py`` freezes the heap of the loaded app (:func:`freeze_heap`), so the collector's
full collections scan only what the worker made since, not the whole application.
"""

from __future__ import annotations

import gc
import logging
import resource

log = logging.getLogger(__name__)

#: Simultaneous connections one gevent worker takes (displays, consoles, cars, timers).
WORKER_CONNECTIONS = 4000
#: File descriptors besides the connections (database, Redis, log files, libraries).
SPARE_FILES = 256
#: Collector thresholds after the freeze: (allocations before a young collection, young
#: collections before a middle one, middle ones before a full one). Python's default
#: young threshold (700) runs a collection about once per lap; 10,000 keeps young
#: collections rarer at the same cost per object.
GC_THRESHOLDS = (10_000, 10, 10)

# --------------------------------------------------------------- gunicorn settings
worker_class = "gevent"
workers = 1
worker_connections = WORKER_CONNECTIONS
control_socket_disable = True
graceful_timeout = 5
timeout = 120


def raise_open_files(wanted: int = WORKER_CONNECTIONS + SPARE_FILES) -> tuple[int, str | None]:
    """Raise this process's soft open-files limit (``RLIMIT_NOFILE``) to ``wanted``, or as
    far as the hard limit allows; child processes (gunicorn's workers, an exec'd gunicorn)
    inherit it. Returns ``(soft limit now, message)``: the message (None when ``wanted``
    is reached) says how many connections fit and how to raise the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit to %s: %s", target, exc)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft, None
    return soft, (f"open-files limit is {soft} (hard limit {hard}): one worker takes about "
                  f"{max(0, soft - SPARE_FILES)} connections, not {wanted - SPARE_FILES}; raise the hard "
                  f"limit (ulimit -Hn {wanted}, systemd LimitNOFILE={wanted}, docker --ulimit "
                  f"nofile={wanted}:{wanted})")


def freeze_heap() -> int:
    """Collect once, then move every object alive now into the collector's permanent
    generation (``gc.freeze``) and set :data:`GC_THRESHOLDS`. Called by ``wsgi.py`` once
    the app is built: the app's modules, routes and mappers are never garbage, and a full
    collection that scans them stalls every push (``bench/lap_path.py --no-freeze``: one
    full collection of 340-420 ms per 150 laps in a process holding the app; frozen:
    none). Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


# ------------------------------------------------------------------- gunicorn hook


def on_starting(server) -> None:
    """gunicorn master, before the workers fork: raise the open-files limit (inherited)."""
    _soft, problem = raise_open_files(int(server.cfg.worker_connections) + SPARE_FILES)
    if problem:
        server.log.warning(problem)
