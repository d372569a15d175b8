"""``python -m sandbox.live_sim --host 127.0.0.1 --port P --api-key KEY [--speed X] [--echo]``

Runs the GPT-Live simulator (see :mod:`sandbox.live_sim`): the WebSocket at
``ws://HOST:P/v1/live/sessions`` and the control endpoints under ``/_sandbox/`` and
``/healthz`` on the same port. ``--speed`` streams the model's audio that many times faster
than real time (OpenAI itself streams faster than playback). ``--echo`` (relay tests and
benchmarks) answers every ``session.input_audio.append`` with a ``session.output_audio.delta``
carrying the same audio (:meth:`sandbox.live_sim.listening.Listening._echo`). The key comes
from the command line only, so a developer's ``OPENAI_API_KEY`` is never read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sandbox.live_sim.server import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.live_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5600)
    parser.add_argument("--api-key", required=True, help="the bearer key clients must send")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--echo", action="store_true", help="echo input audio as output audio")
    args = parser.parse_args(argv)
    if not args.api_key.strip():
        parser.error("--api-key must not be empty")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    asyncio.run(run(args.host, args.port, args.api_key, args.speed, args.echo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
