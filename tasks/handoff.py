"""A customer who asks for a person: the assistant says someone will follow up, and every
STAFF_NOTIFY_TO number gets a text with the conversation's console link (once per message)."""

from __future__ import annotations

import logging
import re

from twilio.rest import Client

from common.config import Config
from common.prompts import with_identity
from common.redis_util import get_redis, key
from tasks import twilio_ops

log = logging.getLogger(__name__)

_ASKS_FOR_PERSON = re.compile(
    r"\b(?:agent|human|representative|operator"
    r"|(?:real|live|actual) (?:person|human|people)"
    r"|(?:speak|talk|chat) (?:to|with) (?:a |an |your )?(?:person|someone|somebody|staff|manager"
    r"|human|team member|employee)"
    r"|(?:want|need|get) (?:a|to talk to a) person)\b",
    re.IGNORECASE,
)
HANDOFF_REPLY = with_identity(
    "I've asked a person from our team to follow up with you here as soon as they can."
)


def asks_for_person(body: str) -> bool:
    return bool(_ASKS_FOR_PERSON.search(body))


def console_link(cfg: Config, conversation_sid: str) -> str:
    return f"{cfg.public_base_url}/staff/conversations/{conversation_sid}"


def hand_off(
    client: Client, cfg: Config, conversation_sid: str, reply_key: str, author: str
) -> str | None:
    """Tell staff (each number once per message), then answer the customer; the reply's SID
    (None when an earlier run already posted it)."""
    text = (
        f"GateFrames: {author or 'a customer'} asked to talk with a person by text. "
        f"Open the conversation: {console_link(cfg, conversation_sid)}"
    )
    r = get_redis()
    for number in cfg.staff_notify_to:
        marker = key("handoff_sms", reply_key, number)
        if r.exists(marker):
            continue
        sent = client.messages.create(to=number, from_=cfg.bot_projected_address, body=text)
        r.set(marker, sent.sid or "sent", ex=twilio_ops.MARKER_SECONDS)
    if not cfg.staff_notify_to:
        log.warning(
            "a customer asked for a person and STAFF_NOTIFY_TO is empty: nobody was texted",
            extra={"conversation_sid": conversation_sid, "outcome": "handoff_unnotified"},
        )
    return twilio_ops.post_once(client, cfg, conversation_sid, reply_key, HANDOFF_REPLY)
