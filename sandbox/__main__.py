"""Operator tools for the sandbox (``make run``), acting as Twilio and a phone would.

``python -m sandbox sms "text" [--from +1…] [--group +1… …]``: the Twilio simulator stores the
message and posts a signed ``onMessageAdded`` webhook to the web process, exactly as Twilio
would; the command waits for the bot's reply and prints the thread.

``python -m sandbox call [--wav FILE] [--answered-by machine_end_beep] [--out heard.wav]``:
asks ``/twilio/voice`` for TwiML like Twilio, opens the relay stream it names, speaks the WAV
(8 kHz mono) in real time, plays what the assistant says on a real-time clock, and writes what
the caller heard. Works against the real OpenAI too: only Twilio is simulated.

``python -m sandbox call --engine live`` scripts the GPT-Live simulator instead (start the stack
with ``VOICE_ENGINE=live make run``).

``python -m sandbox call --say "transfer me to a person"``: the Realtime simulator transcribes
the caller's speech as those words, so the assistant calls the tool they ask for. With
``--say`` the Twilio simulator runs the call itself (``--via twilio``), as Twilio would:
the relay's UpdateCall redirect, ``<Dial>`` to the staff phone with its whisper, the
``<Record>`` offered when nobody answers; the command prints that timeline. A transfer needs
``STAFF_TRANSFER_NUMBER`` set for ``make run`` (any E.164 number: the simulated staff phone
answers after a second).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from sandbox.services import SANDBOX_LIVE_PORT, SANDBOX_PORTS, Credentials

# What `make run` (sandbox.run) listens on and signs with.
DEFAULT_TWILIO_SIM = SANDBOX_PORTS.twilio_url
DEFAULT_REALTIME_SIM = SANDBOX_PORTS.realtime_url
DEFAULT_LIVE_SIM = f"http://127.0.0.1:{SANDBOX_LIVE_PORT}"


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


def call(args: argparse.Namespace) -> int:
    from sandbox import dial, phone

    if args.via == "twilio" or (args.via is None and args.say):
        return call_via_twilio(args)
    call_sid = dial.new_call_sid()
    try:
        target = dial.voice_webhook(
            args.web,
            args.auth_token,
            call_sid=call_sid,
            from_=args.caller,
            to=args.to,
            answered_by=args.answered_by,
        )
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        print(f"voice webhook failed at {args.web}: {exc}", file=sys.stderr)
        return 1
    print(
        f"call {call_sid}: stream {target.url.split('/token/')[0]}/token/… params {target.params}"
    )
    _follow_transcript(args.redis_url, call_sid)
    if args.say:
        _script_caller(_voice_sim(args), args.say)
    caller = phone.Phone(target.url, target.params, call_sid=call_sid, auth_token=args.auth_token)
    caller.connect()
    caller.start_line()  # media every 20 ms from now on, silence unless the caller speaks
    deadline = time.monotonic() + args.max_seconds
    if not args.answered_by:
        speech = phone.read_audio(args.wav) if args.wav else phone.tone(1200)
        if args.listen_first is None:
            _until_quiet(caller, deadline)  # let the greeting finish, as a polite caller does
        else:
            time.sleep(args.listen_first)  # a number can make the caller interrupt (barge-in)
        caller.say(speech)
        while caller.speaking() and not caller.closed.is_set():
            time.sleep(0.05)
        _until_quiet(caller, deadline)  # the assistant's answer
    else:
        caller.wait_closed(max(0.0, deadline - time.monotonic()))  # ends once the message played
    if not caller.closed.is_set():
        caller.hang_up()
        caller.wait_closed(5)
    after = dial.after_stream(target, args.auth_token, call_sid)
    heard_s = len(caller.heard) / phone.BYTES_PER_MS / 1000
    print(
        f"stream closed ({caller.close_code} {caller.close_reason!r}); caller heard "
        f"{heard_s:.1f} s of audio, {len(caller.clears)} barge-in clear(s)"
    )
    print(
        "after the stream Twilio would: "
        + " + ".join(after.verbs)
        + (f' ("{after.said}")' if after.said else "")
    )
    if args.out:
        phone.save_wav(bytes(caller.heard), args.out)
        print(f"wrote {args.out}")
    return 0


def call_via_twilio(args: argparse.Namespace) -> int:
    """The Twilio simulator places and runs the call; print what Twilio did, step by step."""
    from sandbox import dial

    try:
        voice_url = args.web + "/twilio/voice"
        sim_call = dial.call_in(args.twilio_sim, voice_url=voice_url, from_=args.caller)
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach the Twilio simulator at {args.twilio_sim} ({exc})", file=sys.stderr)
        return 1
    print(f"call {sim_call.sid}: placed and run by the Twilio simulator")
    _follow_transcript(args.redis_url, sim_call.sid)
    if args.say:
        _script_caller(_voice_sim(args), args.say)
    deadline = time.monotonic() + args.max_seconds
    shown = _until_stream_quiet(sim_call, deadline, 0)
    if not sim_call.log()["done"]:
        sim_call.speak(1200)  # the caller's turn: the simulator transcribes it as --say
    while time.monotonic() < deadline:
        log = sim_call.log()
        shown = _print_events(log, shown)
        if log["done"]:
            break
        time.sleep(0.2)
    else:
        sim_call.hang_up()
        print(f"(hung up after {args.max_seconds:.0f} s)")
    _print_events(sim_call.log(), shown)
    _explain_tools(_voice_sim(args))
    return 0


def _until_stream_quiet(sim_call, deadline: float, shown: int, quiet_s: float = 1.5) -> int:
    """Print call events until the assistant has spoken and then been quiet ``quiet_s``."""
    last, changed = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        log = sim_call.log()
        shown = _print_events(log, shown)
        heard = log["streams"][-1]["heard_ms"] if log["streams"] else 0
        if heard != last:
            last, changed = heard, time.monotonic()
        elif (heard > 0 and time.monotonic() - changed >= quiet_s) or log["done"]:
            return shown
        time.sleep(0.1)
    return shown


def _print_events(log: dict, shown: int) -> int:
    """One line per call event Twilio logged since ``shown``."""
    for event in log["events"][shown:]:
        kind = event["kind"]
        if kind == "fetch":
            line = f"Twilio requests {event['url']} ({event['why']}): HTTP {event['status']}"
        elif kind == "stream_started":
            line = "stream started: " + event["url"].split("/token/")[0] + "/token/…"
        elif kind == "stream_ended":
            line = f"stream ended by the {event['by']}"
        elif kind == "updated":
            line = "the relay redirected the call (Calls API update)"
        elif kind == "dial":
            line = f"<Dial> {', '.join(event['numbers'])} from {event['caller_id']}: "
            line += event["status"] + "".join(f'; staff heard "{w}"' for w in event["whisper"])
        elif kind == "say":
            line = f'<Say> to the {event["leg"]}: "{event["text"]}"'
        else:
            line = kind + "".join(
                f" {k}={v}" for k, v in event.items() if k not in ("kind", "at") and v
            )
        print(f"  [twilio] {line}", flush=True)
    return len(log["events"])


def _explain_tools(realtime_sim: str) -> None:
    """Say why no tool was called, when the simulated model refused one."""
    try:
        sessions = _http("GET", realtime_sim + "/_sandbox/sessions")["sessions"]
    except (urllib.error.URLError, OSError):
        return
    for refused in (sessions[-1].get("tool_calls_refused") or []) if sessions else []:
        hint = " (set STAFF_TRANSFER_NUMBER)" if refused["name"] == "transfer_to_staff" else ""
        print(f"the assistant could not call {refused['name']}: {refused['why']}{hint}")


def _voice_sim(args: argparse.Namespace) -> str:
    """The simulator answering calls: GPT-Live's with ``--engine live``, else Realtime's."""
    return args.live_sim if args.engine == "live" else args.realtime_sim


def _script_caller(realtime_sim: str, text: str) -> None:
    """Tell the Realtime simulator what the caller's speech says (its transcript), so the
    assistant can act on it (e.g. "transfer me to a person" calls transfer_to_staff)."""
    from urllib.parse import quote

    try:
        _http("GET", f"{realtime_sim}/_sandbox/caller_says?text={quote(text)}")
    except (urllib.error.URLError, OSError) as exc:
        print(f"(--say ignored: no voice simulator at {realtime_sim}: {exc})", file=sys.stderr)


def _until_quiet(caller, deadline: float, quiet_s: float = 1.5) -> None:
    """Wait until the assistant has said something and then been silent for ``quiet_s``
    (nothing new heard, nothing left to play), or the call ends, or ``deadline``."""
    heard_before = last = len(caller.heard)
    changed = time.monotonic()
    while not caller.closed.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
        now, heard = time.monotonic(), len(caller.heard)
        if heard != last or caller.unplayed_bytes():
            last, changed = heard, now
        elif heard > heard_before and now - changed >= quiet_s:
            return


def _follow_transcript(redis_url: str, call_sid: str) -> None:
    """Print the call's transcript lines as the relay publishes them (Redis pub/sub)."""
    import threading

    import redis

    from common.names import call_transcript_channel

    try:
        pubsub = redis.Redis.from_url(redis_url, socket_connect_timeout=1).pubsub()
        pubsub.subscribe(call_transcript_channel(call_sid))
    except redis.RedisError as exc:
        print(f"(no live transcript: Redis at {redis_url} unreachable: {exc})", file=sys.stderr)
        return

    def follow() -> None:
        for message in pubsub.listen():
            if message.get("type") == "message":
                line = json.loads(message["data"])
                print(f"  {line['who']}: {line['text']}", flush=True)

    threading.Thread(target=follow, daemon=True).start()


def _default_redis_url() -> str:
    try:
        from common.config import get_config

        return get_config().redis_url
    except Exception:  # a broken .env must not stop the simulator
        return "redis://127.0.0.1:6379/0"


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
    c = sub.add_parser("call", help="place a simulated phone call to the assistant")
    c.add_argument("--wav", help="what the caller says: 8 kHz mono WAV (default: a tone)")
    c.add_argument("--answered-by", help="e.g. machine_end_beep for voicemail mode")
    c.add_argument("--out", help="write what the caller heard to this WAV")
    c.add_argument("--from", dest="caller", default="+14155550100")
    c.add_argument("--to", default="+14082605145")
    c.add_argument("--web", default=SANDBOX_PORTS.web_url)
    c.add_argument(
        "--auth-token",
        default=Credentials.sandbox().auth_token,
        help="the Twilio auth token the web process validates with",
    )
    c.add_argument(
        "--redis-url",
        default=None,
        help="where the relay publishes live transcripts (default: REDIS_URL)",
    )
    c.add_argument(
        "--listen-first",
        type=float,
        default=None,
        help="seconds before speaking (default: until the greeting has played; a short "
        "value interrupts it, to try barge-in)",
    )
    c.add_argument("--max-seconds", type=float, default=60.0)
    c.add_argument(
        "--say",
        help='what the caller\'s speech means, e.g. "transfer me to a person" (the Realtime '
        "simulator transcribes it so; a phrase may make the assistant call a tool)",
    )
    c.add_argument("--realtime-sim", default=DEFAULT_REALTIME_SIM)
    c.add_argument(
        "--engine",
        choices=("realtime", "live"),
        default="realtime",
        help="the relay's VOICE_ENGINE: which simulator --say scripts (make run starts both)",
    )
    c.add_argument("--live-sim", default=DEFAULT_LIVE_SIM)
    c.add_argument("--twilio-sim", default=DEFAULT_TWILIO_SIM)
    c.add_argument(
        "--via",
        choices=("phone", "twilio"),
        default=None,
        help="phone: ask /twilio/voice and open the stream here (default); twilio: the Twilio "
        "simulator runs the call, redirects and <Dial> included (default with --say)",
    )
    args = parser.parse_args(argv)
    if args.command == "call" and args.redis_url is None:
        args.redis_url = _default_redis_url()
    return sms(args) if args.command == "sms" else call(args)


if __name__ == "__main__":
    sys.exit(main())
