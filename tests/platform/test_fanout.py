"""One encoding per room message (drem.platform.fanout): a leaderboard update to N displays
is serialised once and framed once, every display gets the same bytes, and browsers'
permessage-deflate is declined (per-display compression would make N different copies)."""

from __future__ import annotations

import socket
import sys
from unittest import mock

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

NS = "/leaderboard"
DISPLAYS = 12


def test_a_room_emit_to_many_displays_serialises_the_packet_once(app, factory):
    """Through drem's own emit (leaderboard.service._emit) to a room of 12 displays."""
    import socketio.packet

    from drem.leaderboard.loading import room
    from drem.leaderboard.service import _emit
    from drem.platform.extensions import socketio as sio

    event = factory.event()
    track = event["tracks"][0]["id"]
    displays = [sio.test_client(app, namespace=NS) for _ in range(DISPLAYS)]
    for d in displays:
        assert "error" not in d.emit("join", {"event_id": event["id"], "track": track}, namespace=NS, callback=True)
        d.get_received(NS)
    # earlier tests' clients may still sit in a room of the same name (ids repeat): count them in
    members = len(list(sio.server.manager.get_participants(NS, room(event["id"], track))))
    assert members >= DISPLAYS
    encode, by_manager, sent = socketio.packet.Packet.encode, [], []

    def counted(self, *args, **kwargs):
        if sys._getframe(1).f_code.co_filename.endswith("socketio/manager.py"):  # not the test client's check
            by_manager.append(self)
        return encode(self, *args, **kwargs)

    deliver = sio.server._send_eio_packet  # the test clients' delivery, called once per display
    with mock.patch.object(socketio.packet.Packet, "encode", counted), \
            mock.patch.object(sio.server, "_send_eio_packet", lambda eio_sid, pkt: (sent.append(pkt),
                                                                                    deliver(eio_sid, pkt))):
        _emit("lb_update", {"from": 1, "to": 2, "entries": [{"rank": 1}]}, event["id"], track)
    assert len(by_manager) == 1  # serialised once for the room
    assert len(sent) == members and len({id(p) for p in sent}) == 1  # one Engine.IO packet for all
    for d in displays:
        got = d.get_received(NS)
        assert [(m["name"], m["args"][0]["to"]) for m in got] == [("lb_update", 2)]
        d.disconnect(NS)


def _servers(count: int, deflate: bool):
    """``count`` simple-websocket server ends (as the gevent/gunicorn worker makes them),
    each on a socket pair; returns [(server, client socket)]."""
    import simple_websocket

    pairs = []
    for _ in range(count):
        server_sock, client_sock = socket.socketpair()
        environ = {"werkzeug.socket": server_sock, "HTTP_HOST": "display", "HTTP_CONNECTION": "Upgrade",
                   "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_VERSION": "13",
                   "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ=="}
        if deflate:
            environ["HTTP_SEC_WEBSOCKET_EXTENSIONS"] = "permessage-deflate; client_max_window_bits"
        server = simple_websocket.Server(environ)
        pairs.append((server, client_sock))
    return pairs


def _read_handshake(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert rest == b""
    return head


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


@pytest.mark.parametrize("deflate", [True, False], ids=["browser offers deflate", "no extension offered"])
def test_every_display_gets_one_shared_frame(app, deflate):
    """create_app installed the fan-out: N websocket connections, one message, one frame."""
    from drem.platform import fanout

    message = f'42/leaderboard,["lb_update",{{"deflate":{str(deflate).lower()},"entries":[' + ",".join(['{"rank":1}'] * 200) + "]}]"
    text = "4" + message  # an Engine.IO message packet's text, as engineio.packet caches it
    pairs = _servers(DISPLAYS, deflate)
    try:
        for _server, client_sock in pairs:
            head = _read_handshake(client_sock)
            assert head.startswith(b"HTTP/1.1 101")
            assert b"sec-websocket-extensions" not in head.lower()  # compression declined
        before = dict(fanout.stats)
        with mock.patch("wsproto.frame_protocol.FrameProtocol.send_data") as per_connection:
            for server, _sock in pairs:
                server.send(text)
        assert per_connection.call_count == 0
        assert fanout.stats["framed"] - before["framed"] == 1
        assert fanout.stats["reused"] - before["reused"] == DISPLAYS - 1
        expected = fanout.text_frame(text)
        for _server, client_sock in pairs:
            got = _read_exactly(client_sock, len(expected))
            assert got == expected
            reader = FrameProtocol(client=True, extensions=[])  # wsproto's own parser, as a browser reads
            reader.receive_bytes(got)
            (frame,) = list(reader.received_frames())
            assert frame.opcode == Opcode.TEXT and frame.message_finished and frame.payload == text
    finally:
        for server, client_sock in pairs:
            server.connected = False
            client_sock.close()
            server.sock.close()


def test_text_frame_lengths_follow_rfc_6455():
    from drem.platform.fanout import text_frame

    assert text_frame("a") == b"\x81\x01a"
    assert text_frame("é" * 100)[:4] == b"\x81\x7e\x00\xc8"  # 200 UTF-8 bytes: 16-bit length
    assert text_frame("x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")
