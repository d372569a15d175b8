"""``python -m sandbox.openai_sim --host 127.0.0.1 --port P --api-key KEY``.

Configuration comes from the command line only, so a developer's ``OPENAI_API_KEY`` is never
read (or echoed) by the simulator.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.httpserver import serve
from sandbox.openai_sim.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.openai_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5400)
    parser.add_argument("--api-key", required=True, help="the bearer key clients must send")
    args = parser.parse_args(argv)
    if not args.api_key.strip():
        parser.error("--api-key must not be empty")
    serve(create_app(args.api_key), args.host, args.port, "openai-sim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
