"""One encoding per room message: a leaderboard update goes to hundreds of displays, and
everything that is the same for all of them is done once.

What the libraries already do once per ``socketio.emit(..., to=room)`` (python-socketio
``Manager.emit``, python-engineio ``Packet.encode``): the Socket.IO packet and its JSON,
and the Engine.IO packet's text (cached on the one packet object every display's queue
gets). What they did per display, and this module makes once per message:

- the websocket frame: simple-websocket hands the same text to wsproto for each
  connection, which encodes it to UTF-8 and frames it again (RFC 6455 §5.2; the server
  never masks). :func:`install` wraps ``simple_websocket.ws.Base.send`` so a text message
  seen a moment ago (the same ``str`` object: python-engineio's cached encoding) reuses its
  frame bytes on every connection that is open and uses no extension;
- compression: simple-websocket accepts permessage-deflate from every browser, so each
  display's copy was compressed with that display's own zlib state (no two the same).
  Leaderboard messages are 1-2 KB on the venue's network; :func:`install` declines the
  extension (wsproto's ``PerMessageDeflate.accept`` answering None: the handshake then
  names no extension, RFC 7692 §5), so every display gets the same bytes.

Through Redis (several processes) each process receives the message once and sends it to
its own displays the same way. :func:`install` is idempotent and is called by ``create_app``.
"""

from __future__ import annotations

import threading

import simple_websocket.ws as _ws
from wsproto.connection import ConnectionState
from wsproto.extensions import PerMessageDeflate

#: Recent text messages and their frames (a room emit sends one message to every display
#: within a few milliseconds; a handful is enough, and each entry is freed soon).
FRAME_CACHE_SIZE = 8

_frames: dict[str, bytes] = {}
_lock = threading.Lock()
_installed = False
stats = {"framed": 0, "reused": 0}  # frames built / frames reused (tests, benchmarks)


def text_frame(text: str) -> bytes:
    """An unmasked, final websocket text frame (server to client, RFC 6455 §5.2) of ``text``."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def shared_frame(text: str) -> bytes:
    """The frame of ``text``, built once while it is among the last
    :data:`FRAME_CACHE_SIZE` texts sent (looked up by the string: the same object for
    every display of one emit, so the lookup is an identity check)."""
    frame = _frames.get(text)
    if frame is not None:
        stats["reused"] += 1
        return frame
    frame = text_frame(text)
    stats["framed"] += 1
    with _lock:
        _frames[text] = frame
        while len(_frames) > FRAME_CACHE_SIZE:
            _frames.pop(next(iter(_frames)))
    return frame


class _NoDeflate(PerMessageDeflate):
    """permessage-deflate, declined: the handshake accepts no compression."""

    def accept(self, offer):  # noqa: D102 - wsproto's Extension API
        return None


def _plain(conn) -> bool:
    """True when wsproto's ``WSConnection`` is the server end (no masking), open, and
    frames with no extension."""
    inner = getattr(conn, "connection", None)
    proto = getattr(inner, "_proto", None)
    return (inner is not None and not conn.client and inner.state == ConnectionState.OPEN
            and proto is not None and not proto.extensions)


def install() -> None:
    """Decline websocket compression and share text frames (module docstring); once per process."""
    global _installed
    if _installed:
        return
    original = _ws.Base.send

    def send(self, data):
        if isinstance(data, str) and self.connected and _plain(self.ws):
            self.sock.send(shared_frame(data))
            return
        original(self, data)

    send.__doc__ = original.__doc__
    _ws.Base.send = send
    _ws.PerMessageDeflate = _NoDeflate
    _installed = True
