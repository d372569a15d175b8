"""``@call`` and ``@group``: outbound calls and new group threads requested by text."""

from __future__ import annotations

import logging

from celery.signals import worker_ready
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from common import phone_numbers
from common.config import Config, get_config
from common.prompts import with_identity
from common.redis_util import get_redis, key
from tasks import call_quota, twilio_ops
from tasks.parsing import Command
from tasks.retry import is_transient

log = logging.getLogger(__name__)

GROUP_INTRO = with_identity(
    "Welcome to your group chat! Everyone here can talk freely; mention @ai in a message "
    "whenever you want me to help with gates, openers or accessories."
)


#: Short, plain reasons for the Twilio codes a texter can do something about. Twilio's own
#: error text is never echoed to a texter (it can name accounts, numbers and internals); any
#: other code gets a generic reason and the details go to the log.
REASONS: dict[int, str] = {
    13223: "not a valid phone number",
    13224: "not a valid phone number",
    21211: "not a valid phone number",
    21214: "that number cannot be reached",
    21215: "calls to that number are not allowed",
    21216: "calls to that number are not allowed",
    21217: "not a valid phone number",
    50407: "not a valid phone number",
    50416: "one of these numbers is already in another active text thread with us",
    50435: "group texts only work with US and Canadian mobile numbers",
    50436: "a group text can have at most 10 participants",
    50452: "group texting is not available on our number yet",
}
GENERIC_REASON = "the phone service refused it"


GROUP_REMINDER = with_identity(
    "Someone asked for a group text with everyone here, and this thread already is one. "
    "Mention @ai whenever you want me to help."
)


def _reason(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return REASONS.get(exc.code or 0, GENERIC_REASON)
    return "the phone service did not answer"


def _log_refusal(what: str, exc: Exception) -> None:
    """Twilio's full answer, for staff; the texter only sees :func:`_reason`."""
    if isinstance(exc, TwilioRestException):
        log.warning(
            "%s refused by Twilio: HTTP %s code %s: %s",
            what,
            exc.status,
            exc.code,
            (exc.msg or "")[:300],
            extra={"outcome": "refused"},
        )
    else:
        log.warning("%s failed: %s", what, type(exc).__name__, extra={"outcome": "refused"})


def staff_only_reply(command: Command) -> str:
    return with_identity(
        f"Sorry, only GateFrames staff can use @{command.name}. I'm happy to help with gates, "
        "openers and accessories right here, or a person from our team can call you back."
    )


@worker_ready.connect
def _announce(**_: object) -> None:
    cfg = get_config()
    if cfg.staff_numbers:
        log.info("@call and @group are open to %d staff numbers", len(cfg.staff_numbers))
    else:
        log.warning("STAFF_NUMBERS is empty: @call and @group are off for everyone")


def run(client: Client, cfg: Config, reply_key: str, author: str, command: Command) -> str:
    """Run a command for ``author``; return the acknowledgement for the thread.

    Outbound calls and group texts cost money per number and reach people who never texted
    us, so only staff may use them, with a cap on numbers per message and calls per day."""
    if author not in cfg.staff_numbers:
        log.warning(
            "@%s refused: the author is not on STAFF_NUMBERS",
            command.name,
            extra={"message_sid": reply_key, "outcome": "not_staff"},
        )
        return staff_only_reply(command)
    if len(command.numbers) + len(command.invalid) > cfg.command_max_numbers:
        return with_identity(
            f"Sorry, I can take at most {cfg.command_max_numbers} numbers in one "
            f"@{command.name} message, so I did nothing. Please send fewer."
        )
    if command.name == "call":
        return run_call(client, cfg, reply_key, author, command)
    return run_group(client, cfg, reply_key, author, command)


def _screen(cfg: Config, numbers: list[str]) -> tuple[list[str], list[str]]:
    """(numbers that may be used, "number (reason)" for the ones that may not)."""
    allowed, refused = [], []
    for number in numbers:
        reason = phone_numbers.refusal(number, cfg.bot_projected_address)
        if reason is None:
            allowed.append(number)
        else:
            refused.append(f"{number} ({reason})")
    return allowed, refused


def run_call(client: Client, cfg: Config, reply_key: str, author: str, command: Command) -> str:
    """Place the calls; return the acknowledgement for the thread."""
    if not command.numbers and not command.invalid:
        return with_identity("Tell me who to call, for example: @call (415) 555-0100")
    allowed, failed = _screen(cfg, command.numbers)
    failed = [f"{raw} (not a valid US phone number)" for raw in command.invalid] + failed
    placed: list[str] = []
    capped: list[str] = []
    for number in allowed:
        try:
            twilio_ops.place_call(client, cfg, reply_key, number, author)
            placed.append(number)
        except call_quota.CapReached as cap:
            capped.append(number)
            log.warning(
                "call cap reached (%s)",
                cap.scope,
                extra={"message_sid": reply_key, "outcome": "call_cap"},
            )
        except Exception as exc:
            if is_transient(exc):
                raise  # the task retries; numbers already dialed are remembered
            failed.append(f"{number} ({_reason(exc)})")
            _log_refusal("call", exc)
    parts = []
    if placed:
        parts.append("Calling " + ", ".join(placed) + " now!")
    if failed:
        parts.append("Sorry, I couldn't call " + "; ".join(failed) + ".")
    if capped:
        parts.append(
            "Today's limit for outbound calls is reached, so I didn't call "
            + ", ".join(capped)
            + ". Please try again tomorrow or call from your own phone."
        )
    return with_identity(" ".join(parts))


def run_group(client: Client, cfg: Config, reply_key: str, author: str, command: Command) -> str:
    """Create the group thread; return the acknowledgement for the original thread."""
    if command.invalid:
        return with_identity(
            "Sorry, I couldn't create the group: "
            + ", ".join(command.invalid)
            + " is not a valid US phone number. Group texts "
            "only work with US and Canadian (+1) numbers."
        )
    numbers = [n for n in command.numbers if n != author]
    if not numbers:
        return with_identity(
            "Tell me who to add, for example: @group (415) 555-0100 (415) 555-0101"
        )
    if not author.startswith("+1"):
        return with_identity(
            "Sorry, I couldn't create the group: group texts only work with US and "
            "Canadian (+1) numbers, and yours is not one."
        )
    _, refused = _screen(cfg, numbers)
    if refused:
        return with_identity("Sorry, I couldn't create the group: " + "; ".join(refused) + ".")
    if len(numbers) + 2 > twilio_ops.GROUP_MMS_MAX_PARTICIPANTS:
        return with_identity(
            "Sorry, I couldn't create the group: a group text can have at most "
            f"{twilio_ops.GROUP_MMS_MAX_PARTICIPANTS} participants including you and me, "
            f"so please name at most {twilio_ops.GROUP_MMS_MAX_PARTICIPANTS - 2} numbers."
        )
    try:
        group_sid = twilio_ops.create_group(client, cfg, reply_key, author, numbers)
    except twilio_ops.GroupExists as exists:
        return _group_exists(client, cfg, reply_key, numbers, exists.conversation_sid)
    except Exception as exc:
        if is_transient(exc):
            raise
        marker = key("group", reply_key)
        made = get_redis().get(marker)
        if made:
            twilio_ops.delete_conversation(client, made)
            get_redis().delete(marker)
        _log_refusal("group", exc)
        return with_identity(f"Sorry, I couldn't create the group: {_reason(exc)}.")
    twilio_ops.post_once(client, cfg, group_sid, f"{reply_key}:intro", GROUP_INTRO)
    return with_identity("I started a group text with you and " + ", ".join(numbers) + ".")


def _group_exists(
    client: Client, cfg: Config, reply_key: str, numbers: list[str], existing: str | None
) -> str:
    """These people already share a group thread: point the author there, never make a second."""
    who = ", ".join(numbers)
    if existing is None:
        return with_identity(
            f"You already have a group text with {who}, so I didn't start another."
        )
    twilio_ops.post_once(client, cfg, existing, f"{reply_key}:existing", GROUP_REMINDER)
    return with_identity(
        f"You already have a group text with {who}; I posted a note there so you can pick it up."
    )
