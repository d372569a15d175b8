"""``python -m sandbox.twilio_sim --port P --account-sid AC… --auth-token T [--webhook-url U]``.

Configuration comes from the command line only, so a developer's environment can never point
the simulator at something real.
"""

from __future__ import annotations

import argparse
import re
import sys

from sandbox.httpserver import serve
from sandbox.twilio_sim.app import create_app
from sandbox.twilio_sim.rules import E164
from sandbox.twilio_sim.store import DEFAULT_PHONE_NUMBER, SimConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.twilio_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5300)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument(
        "--webhook-url", help="Conversations post-event webhook (e.g. http://…/twilio/convo)"
    )
    parser.add_argument(
        "--voice-url", help="the bot number's voice webhook (e.g. http://…/twilio/voice)"
    )
    parser.add_argument(
        "--phone-number",
        action="append",
        metavar="E164",
        help=f"a number the account owns; repeatable; the first is the bot's "
        f"(default {DEFAULT_PHONE_NUMBER})",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", args.account_sid):
        parser.error("--account-sid must be AC followed by 32 hex digits")
    numbers = tuple(args.phone_number or [DEFAULT_PHONE_NUMBER])
    if not all(E164.match(n) for n in numbers):
        parser.error("--phone-number must be E.164, e.g. +14082605145")
    cfg = SimConfig(args.account_sid, args.auth_token, args.webhook_url, numbers, args.voice_url)
    serve(create_app(cfg), args.host, args.port, "twilio-sim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
