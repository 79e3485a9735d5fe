"""The car's one Socket.IO connection to ``/car``: reconnect, heartbeat, outbox sender.

Three threads:

- ``car-connection`` connects with ``auth={"token": …}`` and reconnects after any
  drop with exponential backoff and jitter (1 s doubling to 30 s). A refusal with
  ``"invalid car token"`` stops it for good and sets :attr:`Connection.token_refused`
  (the daemon then exits with status 3).
- ``car-heartbeat`` emits ``heartbeat`` at once after connecting and then every
  ``heartbeat_interval_s`` (or at once when :meth:`Connection.heartbeat_now` is called).
- ``car-sender`` sends outbox entries oldest first while connected and deletes an
  entry only on an ``ok: true`` ack (see :mod:`car_client.daemon.outbox`).

Server ``command`` messages are handed to ``on_command(message)``, which must not
block (the dispatcher queues the work).

The lap timer (``car_client.timer``) uses the same class on ``/timer``: ``namespace``,
``token_refusal`` and ``on_heartbeat_ack`` are its parameters, and it takes no commands.

Sending uses :meth:`Connection.call`: like ``socketio.Client.call`` (emit with an
ack callback, wait for the ack) but it also gives up as soon as the connection
drops, instead of waiting out the whole timeout.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import socketio

from car_client.daemon.outbox import Entry, Outbox

log = logging.getLogger(__name__)

NAMESPACE = "/car"
TOKEN_REFUSED = "invalid car token"


class NotConnected(Exception):
    """The connection dropped (or was never up) while waiting for an ack."""


def backoff_delays(
    base_s: float = 1.0, cap_s: float = 30.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless reconnect delays in seconds: base doubling to cap, each with ±25 % jitter.

    Every delay stays within ``[base_s / 2, cap_s]``.
    """
    rng = rng or random.Random()
    delay = base_s
    while True:
        yield max(base_s / 2, min(cap_s, delay * rng.uniform(0.75, 1.25)))
        delay = min(cap_s, delay * 2)


def local_ip_for(server_url: str) -> str | None:
    """The local IP address this machine uses to reach ``server_url`` (None if unknown).

    Uses a connected UDP socket (no packet is sent) so the kernel picks the route.
    """
    parts = urlsplit(server_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        family, _, _, _, addr = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(addr)
            return probe.getsockname()[0]
    except (OSError, IndexError, TypeError):
        return None


def _message_text(data) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data)
    return str(data)


class Connection:
    """The car's connection to the server (see the module docstring).

    ``heartbeat_payload()`` returns the heartbeat dict without ``ip`` (added here);
    ``on_command(message)`` receives each server ``command`` dict (None: no commands).
    ``namespace`` (default ``/car``) is the Socket.IO namespace; a connect refusal whose
    reason contains ``token_refusal`` stops the connection for good. ``on_heartbeat_ack(ack,
    sent_at, received_at)`` gets each heartbeat's ack with the ``time.monotonic()`` of the
    send and of the answer (the timer measures its clock offset from them).
    """

    def __init__(
        self,
        server_url: str,
        token: str,
        outbox: Outbox,
        on_command: Callable[[dict], None],
        heartbeat_payload: Callable[[], dict],
        heartbeat_interval_s: float = 2.0,
        ack_timeout_s: float = 10.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        transports: list[str] | None = None,
        namespace: str = NAMESPACE,
        token_refusal: str = TOKEN_REFUSED,
        on_heartbeat_ack: Callable[[object, float, float], None] | None = None,
        thread_prefix: str = "car",
    ) -> None:
        self.server_url = server_url
        self.namespace = namespace
        self._token_refusal = token_refusal
        self._on_heartbeat_ack = on_heartbeat_ack
        self._thread_prefix = thread_prefix
        self._token = token
        self.outbox = outbox
        self._on_command = on_command
        self._heartbeat_payload = heartbeat_payload
        self.heartbeat_interval_s = heartbeat_interval_s
        self.ack_timeout_s = ack_timeout_s
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._transports = transports
        self.connected = threading.Event()
        self.token_refused = threading.Event()
        self.connect_count = 0
        self.local_ip: str | None = None
        self._stop = threading.Event()
        self._dropped = threading.Event()
        self._wake_heartbeat = threading.Event()
        self._sio: socketio.Client | None = None
        self._sio_lock = threading.Lock()
        self._refusal: str | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Start the connection, heartbeat and sender threads (returns at once)."""
        for name, target in (("connection", self._run_connection),
                             ("heartbeat", self._run_heartbeat),
                             ("sender", self._run_sender)):
            thread = threading.Thread(target=target, name=f"{self._thread_prefix}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_until_stopped(self, stop: threading.Event, poll_s: float = 0.2) -> bool:
        """Block until ``stop`` is set or the server refuses the token for good; returns
        True when the token was refused (the program then exits with its refusal code)."""
        while not stop.wait(poll_s):
            if self.token_refused.is_set():
                break
        return self.token_refused.is_set()

    def stop(self, join_timeout_s: float = 5.0) -> None:
        """Disconnect and stop all threads (waits up to ``join_timeout_s`` for them)."""
        self._stop.set()
        self._dropped.set()
        self._wake_heartbeat.set()
        self.outbox.notify()
        # the connection thread disconnects (one disconnect only: concurrent ones hang)
        deadline = time.monotonic() + join_timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.connected.clear()

    def heartbeat_now(self) -> None:
        """Send a heartbeat as soon as possible (e.g. after a state change)."""
        self._wake_heartbeat.set()

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every due outbox entry to be acknowledged.

        Returns True when nothing due is left, False on timeout or when not connected.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.outbox.ready(limit=1):
                return True
            if not self.connected.is_set():
                return False
            time.sleep(0.05)
        return not self.outbox.ready(limit=1)

    # -- socket ------------------------------------------------------------
    def _new_client(self) -> socketio.Client:
        sio = socketio.Client(reconnection=False, handle_sigint=False)
        sio.on("connect_error", self._on_connect_error, namespace=self.namespace)
        sio.on("disconnect", self._on_disconnect, namespace=self.namespace)
        if self._on_command is not None:
            sio.on("command", self._on_command_message, namespace=self.namespace)
        return sio

    def _on_connect_error(self, data=None) -> None:
        self._refusal = _message_text(data)

    def _on_disconnect(self, reason=None) -> None:
        self._dropped.set()

    def _on_command_message(self, message=None):
        try:
            self._on_command(message if isinstance(message, dict) else {"raw": message})
        except Exception:  # noqa: BLE001 - never let a handler bug kill the socket thread
            log.exception("command handler failed for %r", message)
        return {"ok": True}

    def _run_connection(self) -> None:
        delays = backoff_delays(*self._backoff)
        while not self._stop.is_set():
            sio = self._new_client()
            self._refusal = None
            self._dropped.clear()
            try:
                sio.connect(self.server_url, auth={"token": self._token}, namespaces=[self.namespace],
                            transports=self._transports, wait_timeout=5)
            except (socketio.exceptions.ConnectionError, ValueError, OSError) as exc:
                self._close_quietly(sio)
                if self._refusal and self._token_refusal in self._refusal:
                    log.error("the server refused this device's token (%s): activate it again",
                              self._refusal)
                    self.token_refused.set()
                    return
                delay = next(delays)
                log.warning("cannot connect to %s (%s); retrying in %.1f s",
                            self.server_url, self._refusal or exc, delay)
                if self._stop.wait(delay):
                    return
                continue
            delays = backoff_delays(*self._backoff)
            self.local_ip = local_ip_for(self.server_url)
            with self._sio_lock:
                self._sio = sio
            self.connect_count += 1
            self.connected.set()
            log.info("connected to %s as sid %s", self.server_url, sio.get_sid(self.namespace))
            self.heartbeat_now()
            self.outbox.notify()
            self._dropped.wait()
            self.connected.clear()
            with self._sio_lock:
                self._sio = None
            self._close_quietly(sio)
            if self._stop.is_set():
                return
            delay = next(delays)
            log.warning("connection to %s lost; reconnecting in %.1f s", self.server_url, delay)
            if self._stop.wait(delay):
                return

    @staticmethod
    def _close_quietly(sio: socketio.Client, wait_s: float = 0.5) -> None:
        """Disconnect ``sio``, waiting at most ``wait_s`` (the websocket close handshake can
        take seconds when the server does not answer it; that finishes in the background)."""

        def close() -> None:
            try:
                sio.disconnect()
            except Exception:  # noqa: BLE001
                log.debug("cleanup disconnect failed", exc_info=True)

        closer = threading.Thread(target=close, name="car-disconnect", daemon=True)
        closer.start()
        closer.join(wait_s)

    def call(self, event: str, payload: dict, timeout_s: float | None = None):
        """Emit ``event`` to the namespace (``/car``) and return the server's ack data.

        Raises :class:`NotConnected` if not connected or the connection drops while
        waiting, and ``TimeoutError`` if no ack comes within ``timeout_s``
        (default :attr:`ack_timeout_s`).
        """
        with self._sio_lock:
            sio = self._sio
        if sio is None or not self.connected.is_set():
            raise NotConnected("not connected")
        answered = threading.Event()
        answer: list[tuple] = []

        def on_ack(*args):
            answer.append(args)
            answered.set()

        try:
            sio.emit(event, payload, namespace=self.namespace, callback=on_ack)
        except (socketio.exceptions.SocketIOError, OSError) as exc:
            raise NotConnected(str(exc)) from exc
        deadline = time.monotonic() + (self.ack_timeout_s if timeout_s is None else timeout_s)
        while not answered.wait(0.05):
            if self._dropped.is_set() or self._stop.is_set():
                raise NotConnected("connection dropped before the ack")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ack for {event} within the timeout")
        args = answer[0]
        return args[0] if len(args) == 1 else (list(args) if args else None)

    # -- heartbeat ---------------------------------------------------------
    def _run_heartbeat(self) -> None:
        while not self._stop.is_set():
            self._wake_heartbeat.wait(self.heartbeat_interval_s)
            self._wake_heartbeat.clear()
            if self._stop.is_set():
                return
            with self._sio_lock:
                sio = self._sio
            if sio is None:
                continue
            try:
                payload = dict(self._heartbeat_payload())
                payload["ip"] = self.local_ip
                sent_at = time.monotonic()
                sio.emit("heartbeat", payload, namespace=self.namespace,
                         callback=lambda *args, sent_at=sent_at: self._heartbeat_ack(sent_at, *args))
            except (socketio.exceptions.SocketIOError, OSError) as exc:
                log.debug("heartbeat not sent: %s", exc)
            except Exception:  # noqa: BLE001 - a vehicle status bug must not stop heartbeats
                log.exception("cannot build the heartbeat")

    def _heartbeat_ack(self, sent_at: float, *args) -> None:
        received_at = time.monotonic()
        ack = args[0] if args else None
        if not (isinstance(ack, dict) and ack.get("ok")):
            log.warning("server refused a heartbeat: %r", ack)
        elif self._on_heartbeat_ack is not None:
            try:
                self._on_heartbeat_ack(ack, sent_at, received_at)
            except Exception:  # noqa: BLE001 - never let a handler bug kill the socket thread
                log.exception("heartbeat ack handler failed")

    # -- outbox sender -----------------------------------------------------
    def _run_sender(self) -> None:
        while not self._stop.is_set():
            if not self.connected.wait(0.5):
                continue
            entries = self.outbox.ready(limit=50)
            if not entries:
                self.outbox.wait_for_entries(1.0)
                continue
            for entry in entries:
                if self._stop.is_set() or not self.connected.is_set():
                    break
                if not self._send_entry(entry):
                    self._stop.wait(0.5)
                    break

    def _send_entry(self, entry: Entry) -> bool:
        """Send one entry; return False when the connection is not usable now."""
        try:
            ack = self.call(entry.kind, entry.payload)
        except NotConnected:
            return False
        except TimeoutError:
            log.warning("no ack for %s %s within %.1f s; will resend", entry.kind, entry.id,
                        self.ack_timeout_s)
            return False
        if isinstance(ack, dict) and ack.get("ok") is True:
            self.outbox.delete(entry.id)
            if ack.get("stored") is False:
                log.info("server kept %s %s but stored nothing from it: %s", entry.kind, entry.id,
                         ack.get("reason"))
            return True
        if isinstance(ack, dict) and ack.get("ok") is False:
            retry = ack.get("retry")
            self.outbox.refused(entry.id, str(ack.get("error") or "refused"),
                                retry if isinstance(retry, bool) else None)
        else:
            self.outbox.refused(entry.id, f"malformed ack {ack!r}")
        return True
