"""An echo server on the relay's own server-side socket code, for the Autobahn suite.

    python -m bench.autobahn_echo --port 9001

The relay's pywsgi handler (:class:`relay.handler.RelayHandler`: the handshake checks) hands
each upgrade a :class:`relay.frames.FastWebSocket`; this application sends every message back
as it came (text as text, binary as binary). Admission is replaced by "everyone is admitted",
and the size limit is raised to 64 MiB (the suite's largest messages are 16 MiB), so what the
suite sees is the frame path alone.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from geventwebsocket.server import WebSocketServer  # noqa: E402

from relay.admission import Admitted  # noqa: E402
from relay.handler import RelayHandler  # noqa: E402
from relay.handler import reply as http_reply  # noqa: E402

MAX_MESSAGE_BYTES = 64 << 20


class EchoApp:
    """The part of :class:`relay.server.RelayApp` the handler calls, admitting everyone."""

    cfg = SimpleNamespace(relay_header_timeout_seconds=10.0, max_frame_bytes=MAX_MESSAGE_BYTES)

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
        while (got := ws.receive_raw()) is not None:
            try:
                ws.send_frame(got[1], got[0])
            except OSError:
                break
        with gevent.Timeout(2, False):
            ws.linger()  # let the peer read our close frame before TCP goes away
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.autobahn_echo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    app = EchoApp()
    server = WebSocketServer((args.host, args.port), app, handler_class=RelayHandler, log=None)
    print(f"echo on ws://{args.host}:{args.port}/", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
