"""``@call`` and ``@group``: outbound calls and new group threads requested by text."""

from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from common.config import Config
from common.redis_util import get_redis, key
from tasks import twilio_ops
from tasks.parsing import Command

log = logging.getLogger(__name__)

GROUP_INTRO = (
    "This is the GateFrames A.I. assistant. Welcome to your group chat! Everyone here can talk "
    "freely; mention @ai in a message whenever you want me to help with gates, openers or "
    "accessories."
)


def _reason(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        msg = (exc.msg or "").strip().rstrip(".")
        return msg or f"Twilio error {exc.code or exc.status}"
    return "the phone service did not answer"


def transient(exc: Exception) -> bool:
    """Worth retrying: rate limits, server errors and network failures."""
    if isinstance(exc, TwilioRestException):
        return exc.status == 429 or exc.status >= 500
    return True


def run_call(client: Client, cfg: Config, reply_key: str, command: Command) -> str:
    """Place the calls; return the acknowledgement for the thread."""
    if not command.numbers and not command.invalid:
        return (
            "This is the GateFrames A.I. assistant. Tell me who to call, for example: "
            "@call (415) 555-0100"
        )
    placed: list[str] = []
    failed = [f"{raw} (not a valid US phone number)" for raw in command.invalid]
    for number in command.numbers:
        try:
            twilio_ops.place_call(client, cfg, reply_key, number)
            placed.append(number)
        except Exception as exc:
            if transient(exc):
                raise  # the task retries; numbers already dialed are remembered
            failed.append(f"{number} ({_reason(exc)})")
            log.warning("call refused by Twilio", extra={"reason": _reason(exc)})
    parts = []
    if placed:
        parts.append("Calling " + ", ".join(placed) + " now!")
    if failed:
        parts.append("Sorry, I couldn't call " + "; ".join(failed) + ".")
    return "This is the GateFrames A.I. assistant. " + " ".join(parts)


def run_group(client: Client, cfg: Config, reply_key: str, author: str, command: Command) -> str:
    """Create the group thread; return the acknowledgement for the original thread."""
    prefix = "This is the GateFrames A.I. assistant. "
    if command.invalid:
        return (
            prefix
            + "Sorry, I couldn't create the group: "
            + ", ".join(command.invalid)
            + " is not a valid US phone number. Group texts "
            "only work with US and Canadian (+1) numbers."
        )
    numbers = [n for n in command.numbers if n != author]
    if not numbers:
        return prefix + "Tell me who to add, for example: @group (415) 555-0100 (415) 555-0101"
    if not author.startswith("+1"):
        return (
            prefix + "Sorry, I couldn't create the group: group texts only work with US and "
            "Canadian (+1) numbers, and yours is not one."
        )
    if len(numbers) + 2 > twilio_ops.GROUP_MMS_MAX_PARTICIPANTS:
        return (
            prefix + "Sorry, I couldn't create the group: a group text can have at most "
            f"{twilio_ops.GROUP_MMS_MAX_PARTICIPANTS} participants including you and me, "
            f"so please name at most {twilio_ops.GROUP_MMS_MAX_PARTICIPANTS - 2} numbers."
        )
    try:
        group_sid = twilio_ops.create_group(client, cfg, reply_key, author, numbers)
    except Exception as exc:
        if transient(exc):
            raise
        marker = key("group", reply_key)
        made = get_redis().get(marker)
        if made:
            twilio_ops.delete_conversation(client, made)
            get_redis().delete(marker)
        log.warning("group creation refused", extra={"reason": _reason(exc)})
        return prefix + f"Sorry, I couldn't create the group: {_reason(exc)}."
    twilio_ops.post_once(client, cfg, group_sid, f"{reply_key}:intro", GROUP_INTRO)
    return prefix + "I started a group text with you and " + ", ".join(numbers) + "."
