"""``python -m sandbox.realtime_sim --host 127.0.0.1 --port P --api-key KEY [--speed X] [--echo]``

A GA OpenAI Realtime simulator on one port: the WebSocket at ``/v1/realtime?model=M`` and,
for tests and operators, ``GET /_sandbox/sessions`` (what every session received and sent),
``GET /_sandbox/reset``, ``GET /_sandbox/clock?today=YYYY-MM-DD`` (the simulated date model
shutdowns are judged by; ``today=`` for the real one) and
``GET /_sandbox/faults?reject_connects=N&drop_after_ms=MS&drop_now=1&fail_responses=N``
(``fail_code``, ``fail_type``, ``fail_message`` shape the injected failure)
(GET with a query string, because the WebSocket server parses only GET requests).

``--speed`` streams response audio that many times faster than real time (OpenAI itself
streams faster than playback). ``--echo`` answers every ``input_audio_buffer.append`` with one
``response.output_audio.delta`` carrying the same audio, for the relay benchmark.
The key comes from the command line only, so a developer's ``OPENAI_API_KEY`` is never read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sandbox.realtime_sim.server import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.realtime_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5500)
    parser.add_argument("--api-key", required=True, help="the bearer key clients must send")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args(argv)
    if not args.api_key.strip():
        parser.error("--api-key must not be empty")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    asyncio.run(run(args.host, args.port, args.api_key, args.speed, args.echo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
