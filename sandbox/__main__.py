"""``python -m sandbox sms "text" [--from +1…] [--group +1… …]``: text the bot like a phone.

The Twilio simulator stores the message and posts a signed ``onMessageAdded`` webhook to the
web process, exactly as Twilio would; this command then waits for the bot's reply in the
simulator and prints the thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

DEFAULT_TWILIO_SIM = "http://127.0.0.1:5300"


def _http(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.loads(resp.read() or b"null")


def _conversation(state: dict, sid: str) -> dict:
    convs = state["conversations"]
    return convs[sid] if isinstance(convs, dict) else next(c for c in convs if c["sid"] == sid)


def sms(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"from": args.sender, "body": args.text}
    if args.group:
        payload["group"] = [args.sender, *args.group]
    if args.conversation:
        payload["conversation_sid"] = args.conversation
    try:
        sent = _http("POST", args.twilio_sim + "/_sandbox/inbound", payload)
    except (urllib.error.URLError, OSError) as exc:
        print(
            f"cannot reach the Twilio simulator at {args.twilio_sim} ({exc}); "
            "is `make run` running?",
            file=sys.stderr,
        )
        return 1
    conv, msg_sid = sent["conversation_sid"], sent["message_sid"]
    print(f"{args.sender} → {conv}: {args.text!r} (webhook {sent.get('webhook_status')})")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        messages = _conversation(_http("GET", args.twilio_sim + "/_sandbox/state"), conv)[
            "messages"
        ]
        replies = [m for m in messages if _reply_to(m) == msg_sid]
        if replies:
            for m in messages[-args.show :]:
                print(f"  [{m['index']}] {m['author']}: {m['body']}")
            return 0
        time.sleep(0.25)
    print(f"no reply within {args.timeout:.0f}s (in a group, mention @ai)", file=sys.stderr)
    return 1


def _reply_to(message: dict) -> str | None:
    try:
        return json.loads(message.get("attributes") or "{}").get("reply_to")
    except (ValueError, AttributeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sms", help="text the bot and print the reply")
    p.add_argument("text")
    p.add_argument("--from", dest="sender", default="+14155550100")
    p.add_argument("--group", nargs="+", metavar="NUMBER", help="other people in a group MMS")
    p.add_argument("--conversation", help="an existing conversation SID")
    p.add_argument("--twilio-sim", default=DEFAULT_TWILIO_SIM)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--show", type=int, default=6, help="how many recent messages to print")
    args = parser.parse_args(argv)
    return sms(args)


if __name__ == "__main__":
    sys.exit(main())
