"""Candidate OpenAI Realtime socket clients under gevent, CPU per message (loopback).

Run through ``python -m bench.frame_path --upstream``. A minimal in-process server (a gevent
greenlet) streams N unmasked 1.7 kB ``response.output_audio.delta`` frames and drains what the
client sends; the client reads N, then sends N 0.4 kB appends. Process CPU is reported, so the
server greenlet's share is in every row: read the "raw read" baseline row as the floor.
"""

from gevent import monkey

monkey.patch_all()

import base64  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gevent  # noqa: E402

from relay.wire.codec import accept_key  # noqa: E402

EVENT = (
    '{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1",'
    '"item_id":"item_1","output_index":0,"content_index":0,"delta":"' + "A" * 1600 + '"}'
).encode()
APPEND = '{"type":"input_audio_buffer.append","audio":"' + "f" * 320 + '"}'
_FRAME = bytes((0x81, 126)) + struct.pack("!H", len(EVENT)) + EVENT


def _serve(listener: socket.socket, count: int) -> None:
    conn, _ = listener.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = accept_key(key).encode("ascii")
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )

    def drain() -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    gevent.spawn(drain)
    for _ in range(count):
        conn.sendall(_FRAME)
    gevent.sleep(60)


def _run(name: str, make: Callable, recv: Callable, send: Callable, count: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = gevent.spawn(_serve, listener, count)
    try:
        client = make(f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime?model=m")
        t0 = time.process_time()
        for _ in range(count):
            recv(client)
        t1 = time.process_time()
        for _ in range(count):
            send(client, APPEND)
        t2 = time.process_time()
        recv_us, send_us = 1e6 * (t1 - t0) / count, 1e6 * (t2 - t1) / count
        print(f"  {name:38s} recv {recv_us:6.1f} µs   send {send_us:6.1f} µs")
    except Exception as exc:  # a missing optional client should not stop the table
        print(f"  {name:38s} skipped: {type(exc).__name__}: {exc}")
    finally:
        server.kill()
        listener.close()


class _RawRead:
    """Floor: read the frame bytes and do nothing else."""

    def __init__(self, url: str):
        host, port = url.split("//")[1].split("/")[0].split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.sendall(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.file = self.sock.makefile("rb")
        while self.file.readline() not in (b"\r\n", b""):
            pass

    def recv(self) -> bytes:
        return self.file.read(len(_FRAME))


def main(count: int) -> None:
    import websocket
    from websockets.sync.client import connect as ws_connect

    from relay.wire.upstream import connect

    print(f"{count} messages per client; process CPU per message")
    _run("raw read (floor)", _RawRead, lambda c: c.recv(), lambda c, m: None, count)
    _run("relay.wire.upstream", lambda u: connect(u, "k"), lambda c: c.receive_raw(),
         lambda c, m: c.send(m), count)  # fmt: skip
    _run(
        "websocket-client (skip UTF-8 check)",
        lambda u: websocket.create_connection(
            u, skip_utf8_validation=True, enable_multithread=True, suppress_origin=True
        ),
        lambda c: c.recv_data_frame(True),
        lambda c, m: c.send(m),
        count,
    )
    _run("websocket-client (defaults)", websocket.create_connection, lambda c: c.recv(),
         lambda c, m: c.send(m), min(count, 2000))  # fmt: skip
    _run("websockets.sync", lambda u: ws_connect(u, max_size=None, compression=None),
         lambda c: c.recv(decode=False), lambda c, m: c.send(m), count)  # fmt: skip

    def openai_sdk(url: str):
        import openai

        client = openai.OpenAI(api_key="k", websocket_base_url=url.split("/realtime")[0])
        return client.realtime.connect(model="m").__enter__()

    _run(
        "openai SDK sync realtime (recv_bytes)",
        openai_sdk,
        lambda c: c.recv_bytes(),
        lambda c, m: c.send({"type": "input_audio_buffer.append", "audio": "f" * 320}),
        min(count, 5000),
    )
