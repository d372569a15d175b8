"""Conversation operations on Twilio, written so a re-run never repeats a side effect.

Celery delivers at least once (acks_late, redelivery after a crash), so every write here is
guarded: a reply is posted with ``Attributes.reply_to = <message key>`` and a Redis marker, and
before posting we look at the conversation itself for a reply a crashed run already posted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from common.config import Config
from common.redis_util import claim, get_redis, key
from tasks import call_quota
from tasks.chat import Turn, media_types

log = logging.getLogger(__name__)

#: How long markers live: far longer than any redelivery or Twilio retry window.
MARKER_SECONDS = 7 * 24 * 3600
#: Twilio error codes meaning "this participant is already in the conversation": the same
#: identity (50433) or the same group address (50437). Nothing else is "already there": 50438
#: means a *different* group with these people exists, 50416 that the address is bound in
#: another active conversation.
ALREADY_PARTICIPANT_CODES = {50433, 50437}
#: "A group conversation with the same participant list already exists."
DUPLICATE_GROUP_CODE = 50438
#: Group MMS allows at most this many participants (the bot included).
GROUP_MMS_MAX_PARTICIPANTS = 10


def bot_authors(cfg: Config) -> set[str]:
    return {cfg.bot_identity, cfg.bot_projected_address, "system"}


def _address(participant: Any) -> str:
    binding = participant.messaging_binding or {}
    return str(binding.get("address") or binding.get("projected_address") or "")


def other_participants(cfg: Config, participants: list[Any]) -> list[Any]:
    """Participants other than the bot and ``system``."""
    bots = bot_authors(cfg)
    return [p for p in participants if (p.identity or "") not in bots and _address(p) not in bots]


def is_group(cfg: Config, participants: list[Any]) -> bool:
    """A group is two or more participants besides the bot and ``system``."""
    return len(other_participants(cfg, participants)) >= 2


def list_participants(client: Client, conversation_sid: str) -> list[Any]:
    return client.conversations.v1.conversations(conversation_sid).participants.list(limit=50)


def ensure_bot(client: Client, cfg: Config, conversation_sid: str, participants: list[Any]) -> None:
    """Add the bot (identity + projected address) when missing; "already there" is success."""
    if any(p.identity == cfg.bot_identity for p in participants):
        return
    try:
        client.conversations.v1.conversations(conversation_sid).participants.create(
            identity=cfg.bot_identity,
            messaging_binding_projected_address=cfg.bot_projected_address,
        )
    except TwilioRestException as exc:
        if exc.code in ALREADY_PARTICIPANT_CODES:
            return
        raise


def to_turn(message: Any) -> Turn:
    return Turn(
        author=message.author or "",
        body=message.body or "",
        media=media_types(message.media),
        index=int(message.index) if message.index is not None else -1,
        sid=message.sid or "",
    )


def recent_turns(client: Client, conversation_sid: str, limit: int) -> list[Turn]:
    """The newest ``limit`` messages, oldest first (Twilio lists ascending by default)."""
    messages = client.conversations.v1.conversations(conversation_sid).messages.list(
        order="desc", limit=limit
    )
    return [to_turn(m) for m in reversed(messages)]


def newest_turn(client: Client, conversation_sid: str) -> Turn | None:
    messages = client.conversations.v1.conversations(conversation_sid).messages.list(
        order="desc", limit=1
    )
    return to_turn(messages[0]) if messages else None


def _reply_to(message: Any) -> str | None:
    try:
        attrs = json.loads(message.attributes or "{}")
    except ValueError:
        return None
    return attrs.get("reply_to") if isinstance(attrs, dict) else None


def already_replied(client: Client, cfg: Config, conversation_sid: str, reply_key: str) -> bool:
    """True if our marker, or the conversation itself, shows a reply for ``reply_key``."""
    if get_redis().exists(key("replied", reply_key)):
        return True
    recent = client.conversations.v1.conversations(conversation_sid).messages.list(
        order="desc", limit=50
    )
    bots = bot_authors(cfg)
    for message in recent:
        if message.author in bots and _reply_to(message) == reply_key:
            get_redis().set(key("replied", reply_key), message.sid, ex=MARKER_SECONDS)
            return True
    return False


def post_once(
    client: Client, cfg: Config, conversation_sid: str, reply_key: str, body: str
) -> str | None:
    """Post ``body`` as the bot unless a reply for ``reply_key`` exists; return the new sid."""
    if already_replied(client, cfg, conversation_sid, reply_key):
        log.info(
            "reply already posted; not posting again",
            extra={
                "conversation_sid": conversation_sid,
                "message_sid": reply_key,
                "outcome": "already_replied",
            },
        )
        return None
    message = client.conversations.v1.conversations(conversation_sid).messages.create(
        author=cfg.bot_identity, body=body, attributes=json.dumps({"reply_to": reply_key})
    )
    get_redis().set(key("replied", reply_key), message.sid, ex=MARKER_SECONDS)
    return message.sid


def place_call(client: Client, cfg: Config, reply_key: str, number: str, author: str) -> str:
    """One outbound call to ``number``, at most once per (message, number), counted against
    today's caps (:mod:`tasks.call_quota`; raises ``CapReached`` when they are used up).

    A marker is taken *before* dialing: if a run dies right after Twilio accepted the call, a
    re-run must not ring the person a second time, so an unfinished marker counts as placed."""
    marker = key("call", reply_key, number)
    r = get_redis()
    if not claim(r, marker, "dialing", ex=MARKER_SECONDS):
        return r.get(marker) or "dialing"
    try:
        call_quota.reserve(cfg, author)
    except Exception:
        r.delete(marker)
        raise
    try:
        call = client.calls.create(
            to=number,
            from_=cfg.bot_projected_address,
            url=cfg.public_base_url + "/twilio/voice",
            machine_detection="DetectMessageEnd",
        )
    except Exception:
        r.delete(marker)  # Twilio refused or was unreachable: no call exists, retry is safe
        call_quota.release(author)
        raise
    r.set(marker, call.sid, ex=MARKER_SECONDS)
    return call.sid


class GroupExists(Exception):
    """Twilio refused the new group (50438): these people already share a group thread.

    ``conversation_sid`` is that thread when it could be found (None if not); the half-made
    conversation has been deleted by then, so nothing is left behind either way."""

    def __init__(self, conversation_sid: str | None):
        super().__init__(conversation_sid or "existing group not found")
        self.conversation_sid = conversation_sid


def group_members(cfg: Config, participants: list[Any]) -> frozenset[str]:
    """The phone numbers of a group thread, the bot's projected address included."""
    return frozenset(a for a in (_address(p) for p in participants) if a)


def find_group(
    client: Client, cfg: Config, author: str, numbers: list[str], exclude: str
) -> str | None:
    """The open group thread whose members are exactly the author, ``numbers`` and the bot."""
    wanted = frozenset([author, *numbers, cfg.bot_projected_address])
    for found in client.conversations.v1.participant_conversations.list(address=author, limit=50):
        sid = found.conversation_sid
        if sid == exclude or found.conversation_state == "closed":
            continue
        if group_members(cfg, list_participants(client, sid)) == wanted:
            return sid
    return None


def create_group(
    client: Client, cfg: Config, reply_key: str, author: str, numbers: list[str]
) -> str:
    """A new group MMS conversation with the author, the numbers and the bot; returns its sid.
    Re-runs reuse the conversation made by an earlier run. Raises :class:`GroupExists` when
    Twilio says these people already have a group (after deleting the half-made one)."""
    r = get_redis()
    marker = key("group", reply_key)
    try:
        return _build_group(client, cfg, marker, author, numbers)
    except TwilioRestException as exc:
        if exc.code != DUPLICATE_GROUP_CODE:
            raise
        half_made = r.get(marker) or ""
        existing = find_group(client, cfg, author, numbers, exclude=half_made)
        if half_made:
            delete_conversation(client, half_made)
            r.delete(marker)
        log.info(
            "group already exists; not creating another",
            extra={"conversation_sid": existing or "", "outcome": "group_exists"},
        )
        raise GroupExists(existing) from exc


def _build_group(client: Client, cfg: Config, marker: str, author: str, numbers: list[str]) -> str:
    r = get_redis()
    existing = r.get(marker)
    if existing:
        conversation_sid = existing
    else:
        name = "GF Group " + dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        conversation_sid = client.conversations.v1.conversations.create(friendly_name=name).sid
        r.set(marker, conversation_sid, ex=MARKER_SECONDS)
    conversation = client.conversations.v1.conversations(conversation_sid)
    present = {_address(p) for p in conversation.participants.list(limit=50)}
    for number in [author, *numbers]:
        if number in present:
            continue
        try:
            conversation.participants.create(messaging_binding_address=number)
        except TwilioRestException as exc:
            if exc.code not in ALREADY_PARTICIPANT_CODES:
                raise
    ensure_bot(client, cfg, conversation_sid, conversation.participants.list(limit=50))
    return conversation_sid


def delete_conversation(client: Client, conversation_sid: str) -> None:
    try:
        client.conversations.v1.conversations(conversation_sid).delete()
    except Exception:
        log.warning(
            "could not delete half-made group", extra={"conversation_sid": conversation_sid}
        )
