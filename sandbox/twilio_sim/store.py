"""The simulator's in-memory account: conversations, participants, messages and calls.

One re-entrant lock guards everything. Handlers hold it only while reading or changing state
(never while posting a webhook), so the web process and the Celery worker can call in at the
same time without seeing half-made resources. Records are plain dicts shaped close to the
REST JSON; ``render`` helpers in the route modules add URLs and links.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.twilio_sim import rules
from sandbox.twilio_sim.errors import TwilioError, not_found
from sandbox.twilio_sim.records import conversation_state, iso_now, json_attr, new_sid, public

DEFAULT_PHONE_NUMBER = "+14082605145"
MAX_BODY_CHARS = 1600


@dataclass(frozen=True)
class SimConfig:
    account_sid: str
    auth_token: str
    webhook_url: str | None = None
    #: Numbers the account owns: the first is the bot's (1:1 proxy address); any may be a
    #: call's ``From``.
    phone_numbers: tuple[str, ...] = (DEFAULT_PHONE_NUMBER,)
    #: The bot number's "A call comes in" webhook, for calls placed with
    #: ``POST /_sandbox/calls`` that name no URL.
    voice_url: str | None = None

    @property
    def phone_number(self) -> str:
        return self.phone_numbers[0]


@dataclass
class Conversation:
    record: dict[str, Any]
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_index: int = 0

    @property
    def sid(self) -> str:
        return self.record["sid"]


class Store:
    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.chat_service_sid = new_sid("IS")
        self.messaging_service_sid = new_sid("MG")
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.conversations: dict[str, Conversation] = {}
            self.calls: dict[str, dict[str, Any]] = {}
            self.messages: dict[str, dict[str, Any]] = {}  # Api 2010 SMS, by SID
            self._seq = itertools.count(1)

    def seq(self) -> int:
        return next(self._seq)

    # -- conversations ---------------------------------------------------------------------
    def create_conversation(
        self,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        attributes: str | None = None,
        state: str | None = None,
    ) -> Conversation:
        with self.lock:
            if unique_name and any(
                c.record["unique_name"] == unique_name for c in self.conversations.values()
            ):
                raise TwilioError(409, 50353)
            now = iso_now()
            record = {
                "sid": new_sid("CH"),
                "account_sid": self.cfg.account_sid,
                "chat_service_sid": self.chat_service_sid,
                "messaging_service_sid": self.messaging_service_sid,
                "friendly_name": friendly_name,
                "unique_name": unique_name,
                "attributes": json_attr(attributes),
                "state": conversation_state(state or "active"),
                "date_created": now,
                "date_updated": now,
                "timers": {},
                "bindings": None,
                "_seq": self.seq(),
            }
            conv = Conversation(record)
            self.conversations[conv.sid] = conv
            return conv

    def conversation(self, sid_or_name: str) -> Conversation:
        with self.lock:
            conv = self.conversations.get(sid_or_name)
            if conv is None:
                conv = next(
                    (
                        c
                        for c in self.conversations.values()
                        if c.record["unique_name"] == sid_or_name
                    ),
                    None,
                )
            if conv is None:
                raise not_found(f"/Conversations/{sid_or_name}")
            return conv

    def update_conversation(self, conv: Conversation, fields: dict[str, str]) -> None:
        with self.lock:
            rec = conv.record
            if "FriendlyName" in fields:
                rec["friendly_name"] = fields["FriendlyName"]
            if "UniqueName" in fields:
                rec["unique_name"] = fields["UniqueName"] or None
            if "Attributes" in fields:
                rec["attributes"] = json_attr(fields["Attributes"])
            if fields.get("State"):
                rec["state"] = conversation_state(fields["State"])
            rec["date_updated"] = iso_now()

    def delete_conversation(self, conv: Conversation) -> None:
        with self.lock:
            self.conversations.pop(conv.sid, None)

    # -- participants ----------------------------------------------------------------------
    def add_participant(
        self,
        conv: Conversation,
        identity: str | None,
        address: str | None,
        proxy: str | None,
        projected: str | None,
        attributes: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            binding = rules.check_participant(
                self, conv, identity or None, address, proxy, projected
            )
            now = iso_now()
            participant = {
                "sid": new_sid("MB"),
                "account_sid": self.cfg.account_sid,
                "conversation_sid": conv.sid,
                "identity": identity or None,
                "attributes": json_attr(attributes),
                "messaging_binding": binding,
                "role_sid": None,
                "date_created": now,
                "date_updated": now,
                "last_read_message_index": None,
                "last_read_timestamp": None,
                "_seq": self.seq(),
            }
            conv.participants[participant["sid"]] = participant
            conv.record["date_updated"] = now
            return participant

    def participant(self, conv: Conversation, sid: str) -> dict[str, Any]:
        with self.lock:
            found = conv.participants.get(sid) or next(
                (p for p in conv.participants.values() if p["identity"] == sid), None
            )
            if found is None:
                raise TwilioError(404, 50432, f"Participant {sid} not found")
            return found

    def remove_participant(self, conv: Conversation, sid: str) -> None:
        with self.lock:
            conv.participants.pop(self.participant(conv, sid)["sid"], None)

    def author_participant(self, conv: Conversation, author: str) -> dict[str, Any] | None:
        """The participant a message author names: an identity or an SMS address."""
        for p in conv.participants.values():
            binding = p["messaging_binding"] or {}
            if author and author in (p["identity"], binding.get("address")):
                return p
            if author and author == binding.get("projected_address") and not p["identity"]:
                return p
        return None

    # -- messages --------------------------------------------------------------------------
    def add_message(
        self,
        conv: Conversation,
        author: str,
        body: str | None,
        attributes: str | None = None,
        media: list[dict[str, Any]] | None = None,
        date_created: str | None = None,
    ) -> dict[str, Any]:
        if not body and not media:
            raise TwilioError(400, 50503)
        if body and len(body) > MAX_BODY_CHARS:
            raise TwilioError(400, 21617)
        with self.lock:
            now = iso_now()
            sender = self.author_participant(conv, author)
            message = {
                "sid": new_sid("IM"),
                "account_sid": self.cfg.account_sid,
                "conversation_sid": conv.sid,
                "index": conv.next_index,
                "author": author,
                "body": body if body is not None else None,
                "media": media or None,
                "attributes": json_attr(attributes),
                "participant_sid": sender["sid"] if sender else None,
                "date_created": date_created or now,
                "date_updated": now,
                "delivery": _delivery(conv, sender),
                "content_sid": None,
            }
            conv.next_index += 1
            conv.messages.append(message)
            conv.record["date_updated"] = now
            return message

    def message(self, conv: Conversation, sid_or_index: str) -> dict[str, Any]:
        with self.lock:
            for m in conv.messages:
                if sid_or_index in (m["sid"], str(m["index"])):
                    return m
        raise not_found(f"/Conversations/{conv.sid}/Messages/{sid_or_index}")

    def delete_message(self, conv: Conversation, sid: str) -> None:
        with self.lock:
            target = self.message(conv, sid)
            conv.messages = [m for m in conv.messages if m is not target]

    # -- everything ------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """A JSON snapshot for ``/_sandbox/state`` (internal keys dropped)."""
        with self.lock:
            conversations = [
                {
                    **public(c.record),
                    "participants": [public(p) for p in c.participants.values()],
                    "messages": [dict(m) for m in c.messages],
                }
                for c in self.conversations.values()
            ]
            calls = [
                {
                    **public(c),
                    **{k: v for k, v in c["_extra"].items() if not k.endswith("_at")},
                }
                for c in self.calls.values()
            ]
        return {
            "account_sid": self.cfg.account_sid,
            "phone_numbers": list(self.cfg.phone_numbers),
            "conversations": conversations,
            "calls": calls,
            "sms": [dict(m) for m in self.messages.values()],
        }


def _delivery(conv: Conversation, sender: dict[str, Any] | None) -> dict[str, Any] | None:
    """Delivery summary for messages that go out over SMS (none for chat-only threads)."""
    recipients = [
        p
        for p in conv.participants.values()
        if p is not sender and (p["messaging_binding"] or {}).get("address")
    ]
    if not recipients:
        return None
    return {
        "total": len(recipients),
        "sent": "all",
        "delivered": "none",
        "read": "none",
        "failed": "none",
        "undelivered": "none",
    }
