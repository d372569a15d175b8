"""The floor under the relay's CPU: a gevent process doing only the relay's socket work.

    python -m bench.wakeup_floor --calls 20 --seconds 15 [--callbacks]

Per call and per 20 ms the relay receives three messages (Twilio media, the OpenAI delta,
the mark echo) and sends two (the append, media + mark), each on its own socket and at its own
moment, so each costs a wake-up. This bench reproduces exactly that with no WebSocket framing,
JSON or bridge: a gevent server (monkey-patched, one greenlet per socket, as the relay) with
three sockets per call; a raw asyncio client writes 400 bytes on each socket every 20 ms,
phases spread; the server echoes on two sockets of three and reads the third. The server's
CPU per call-minute is what the relay's design costs on this machine before it does any work.

``--callbacks``: the same socket work from libev callbacks in the hub (as :mod:`relay.wire.hub_io`
does for calls) instead of a greenlet blocked in ``recv`` per socket: no greenlet switch per
message.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from bench.relay_load import free_port, tree_cpu, wait_port

MESSAGE = b"x" * 400
PERIOD_S = 0.020


def serve_callbacks(port: int) -> None:
    """The floor of :mod:`relay.wire.hub_io`: a read watcher per socket, recv and send in place."""
    import socket

    import gevent

    loop = gevent.get_hub().loop
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    listener.setblocking(False)
    watchers: list = []  # keep the watchers alive

    def one(conn: socket.socket, echo: bool) -> None:
        watcher = loop.io(conn.fileno(), 1)

        def ready() -> None:
            try:
                data = conn.recv(65536)
                if data and echo:
                    conn.send(data)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                watcher.stop()
                conn.close()

        watcher.start(ready)
        watchers.append(watcher)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            one(conn, len(watchers) % 3 != 2)

    accepting = loop.io(listener.fileno(), 1)
    accepting.start(accept)
    gevent.sleep(1e9)


def serve(port: int) -> None:
    from gevent import monkey

    monkey.patch_all()
    import socket

    import gevent

    def one(conn: socket.socket, echo: bool) -> None:
        try:
            while data := conn.recv(65536):
                if echo:
                    conn.sendall(data)
        except OSError:
            pass

    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    n = 0
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gevent.spawn(one, conn, n % 3 != 2)
        n += 1


async def drive(port: int, calls: int, seconds: float, server_pid: int) -> tuple[float, float]:
    """(server CPU seconds, rounds per second achieved)."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(calls * 3)]

    async def drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    drains = [asyncio.ensure_future(drain(r)) for r, _ in conns]
    await asyncio.sleep(0.5)
    cpu0, t0, rounds = tree_cpu(server_pid), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        for j, (_, writer) in enumerate(conns):
            delay = t0 + rounds * PERIOD_S + j * PERIOD_S / len(conns) - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            writer.write(MESSAGE)
        rounds += 1
    cpu = tree_cpu(server_pid) - cpu0
    rate = rounds / (time.monotonic() - t0)
    for _, writer in conns:
        writer.close()
    for d in drains:
        d.cancel()
    return cpu, rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wakeup_floor", description=__doc__)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--callbacks", action="store_true", help="libev callbacks in the hub")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        (serve_callbacks if args.callbacks else serve)(args.serve)
        return 0
    port = free_port()
    mode = ["--callbacks"] if args.callbacks else []
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.wakeup_floor", "--serve", str(port), *mode]
    )
    try:
        wait_port(port)
        cpu, rate = asyncio.run(drive(port, args.calls, args.seconds, server.pid))
    finally:
        server.kill()
        server.wait(10)
    per_call_minute = cpu / (args.calls * args.seconds / 60)
    print(
        f"{'callbacks' if args.callbacks else 'greenlets'}: "
        f"{args.calls} calls x 3 sockets, {rate:.0f} rounds/s (target 50): server "
        f"{cpu:.2f} CPU-s in {args.seconds:.0f} s = {per_call_minute:.3f} CPU-s per call-minute"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
