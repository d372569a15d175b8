"""An echo server on the relay's own server-side socket code, for the Autobahn suite.

    python -m bench.autobahn_echo --port 9001
    python -m bench.autobahn_echo --port 9001 --hub   # the call path's push reader

The relay's pywsgi handler (:class:`relay.handler.RelayHandler`: the handshake checks) hands each
upgrade a :class:`relay.wire.server_socket.FastWebSocket`; this application sends every message back
as it came (text as text, binary as binary). Admission is replaced by "everyone is admitted", and
the size limit is raised to 64 MiB (the suite's largest messages are 16 MiB), so what the suite sees
is the frame path alone.

``--hub`` (or ``GATEFRAMES_ECHO_HUB=1``): after the first message (read with ``receive_raw``,
which empties the handshake's buffered reader, as ``relay.call.session`` does) the socket
switches to :meth:`relay.wire.server_socket.FastWebSocket.start_hub`, and messages are echoed from
``on_message`` inside the hub through the socket's Outbox: the relay's call path.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from geventwebsocket.server import WebSocketServer  # noqa: E402

from relay.admission import Admitted  # noqa: E402
from relay.handler import RelayHandler  # noqa: E402
from relay.handler import reply as http_reply  # noqa: E402

MAX_MESSAGE_BYTES = 64 << 20


class EchoApp:
    """The part of :class:`relay.server.RelayApp` the handler calls, admitting everyone."""

    cfg = SimpleNamespace(relay_header_timeout_seconds=10.0, max_frame_bytes=MAX_MESSAGE_BYTES)

    def __init__(self, hub: bool = False):
        self.hub = hub

    def note_request(self, environ: dict[str, Any]) -> None:
        pass

    def client_ip(self, environ: dict[str, Any]) -> str:
        return environ.get("REMOTE_ADDR", "")

    def admit(self, environ: dict[str, Any], ip: str) -> Admitted:
        return Admitted(surface="echo", claims=None, client_ip=ip, subprotocol=None)  # type: ignore[arg-type]

    def __call__(self, environ: dict[str, Any], start_response):
        ws = environ.get("wsgi.websocket")
        if ws is None:
            return http_reply(start_response, 426, b"Expected Upgrade: websocket\n")
        if self.hub:
            echo_from_hub(ws)
        else:
            echo_pulled(ws)
        with gevent.Timeout(2, False):
            ws.linger()  # let the peer read our close frame before TCP goes away
        return []


def echo_pulled(ws) -> None:
    while (got := ws.receive_raw()) is not None:
        try:
            ws.send_frame(got[1], got[0])
        except OSError:
            break


def echo_from_hub(ws) -> None:
    got = ws.receive_raw()
    if got is None:
        return
    try:
        ws.send_frame(got[1], got[0])
    except OSError:
        return
    ended = gevent.event.Event()

    def on_message(opcode: int, payload: bytes) -> None:  # in the hub: must not block
        try:
            ws.send_frame(payload, opcode)
        except OSError:
            ended.set()

    if not ws.start_hub(on_message, ended.set):
        raise RuntimeError("start_hub refused a plain socket after the first message")
    try:
        ended.wait()
    finally:
        ws.stop_hub()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.autobahn_echo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument(
        "--hub",
        action="store_true",
        default=os.environ.get("GATEFRAMES_ECHO_HUB") == "1",
        help="read with start_hub after the first message (the relay's call path)",
    )
    args = parser.parse_args(argv)
    app = EchoApp(hub=args.hub)
    server = WebSocketServer((args.host, args.port), app, handler_class=RelayHandler, log=None)
    mode = "hub" if args.hub else "pull"
    print(f"echo ({mode}) on ws://{args.host}:{args.port}/", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
