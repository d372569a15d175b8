"""The phone network's side: people texting the bot, conversations timing out, calls answered.

``text_in`` does what Twilio does when an SMS/MMS reaches the bot's number: it finds the
conversation (1:1 by the sender's address + proxy address, group by the exact set of phone
numbers, as Group MMS autocreation does) or creates it, stores the message authored by the
sender's address and posts a signed ``onMessageAdded`` webhook. State is changed under the
store lock; the webhook is posted after the lock is released, because the app calls back in.
"""

from __future__ import annotations

from typing import Any

from sandbox.twilio_sim import rules, webhooks
from sandbox.twilio_sim.calls import ENDED, answered_by_values, set_status
from sandbox.twilio_sim.context import Sim
from sandbox.twilio_sim.errors import TwilioError, not_found
from sandbox.twilio_sim.records import new_sid
from sandbox.twilio_sim.store import Conversation


class BadRequest(ValueError):
    """A control request that makes no sense (answered with 400 and the reason)."""


def _media(items: list[Any] | None) -> list[dict[str, Any]] | None:
    """Accept ``"image/jpeg"`` or ``{"content_type"|"ContentType", "filename", "size"}``."""
    if not items:
        return None
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"content_type": item}
        if not isinstance(item, dict):
            raise BadRequest("media items are content-type strings or objects")
        out.append(
            {
                "sid": item.get("sid") or new_sid("ME"),
                "size": int(item.get("size") or item.get("Size") or 0),
                "content_type": item.get("content_type") or item.get("ContentType") or "image/jpeg",
                "filename": item.get("filename") or item.get("Filename"),
                "category": "media",
            }
        )
    return out


def _open(conv: Conversation) -> bool:
    return conv.record["state"] != "closed"


def _one_to_one(s: Sim, sender: str, to: str) -> Conversation:
    for conv in s.store.conversations.values():
        if _open(conv) and any(
            (p["messaging_binding"] or {}).get("address") == sender
            and (p["messaging_binding"] or {}).get("proxy_address") == to
            for p in conv.participants.values()
        ):
            return conv
    conv = s.store.create_conversation()
    try:
        s.store.add_participant(conv, None, sender, to, None)
    except TwilioError:
        s.store.delete_conversation(conv)
        raise
    return conv


def _group(s: Sim, members: list[str]) -> Conversation:
    wanted = frozenset(members)
    for conv in s.store.conversations.values():
        phones = [p for p in conv.participants.values() if rules.is_group_member(p)]
        addresses = {(p["messaging_binding"] or {}).get("address") for p in phones} - {None}
        if _open(conv) and addresses == wanted:
            return conv
    conv = s.store.create_conversation()
    try:
        for number in members:
            s.store.add_participant(conv, None, number, None, None)
    except TwilioError:
        s.store.delete_conversation(conv)
        raise
    return conv


def text_in(s: Sim, payload: dict[str, Any]) -> dict[str, Any]:
    sender = payload.get("from")
    if not isinstance(sender, str) or not rules.is_e164(sender):
        raise BadRequest("'from' must be an E.164 phone number such as +14155550100")
    body = payload.get("body")
    if body is not None and not isinstance(body, str):
        raise BadRequest("'body' must be a string")
    media = _media(payload.get("media"))
    to = payload.get("to") or s.cfg.phone_number
    group = payload.get("group")
    with s.store.lock:
        if payload.get("conversation_sid"):
            conv = s.store.conversation(payload["conversation_sid"])
            if s.store.author_participant(conv, sender) is None:
                raise BadRequest(f"{sender} is not a participant of {conv.sid}")
        elif group:
            if not isinstance(group, list) or not all(isinstance(n, str) for n in group):
                raise BadRequest("'group' must be a list of phone numbers")
            conv = _group(s, [n for n in dict.fromkeys([sender, *group]) if n != to])
        else:
            conv = _one_to_one(s, sender, to)
        message = s.store.add_message(conv, sender, body, None, media)
        params = webhooks.message_added(s.store, conv, message, "SMS", s.webhooks.webhook_sid)
    result = {
        "conversation_sid": conv.sid,
        "message_sid": message["sid"],
        "participant_sid": message["participant_sid"],
        "index": message["index"],
    }
    return {**result, **_deliver(s, payload.get("webhook_url"), params)}


def state_updated(s: Sim, payload: dict[str, Any]) -> dict[str, Any]:
    """Move a conversation to ``state_to`` (default ``inactive``) and post the webhook."""
    state_to = payload.get("state_to", "inactive")
    if state_to not in ("active", "inactive", "closed"):
        raise BadRequest("'state_to' must be active, inactive or closed")
    with s.store.lock:
        conv = s.store.conversation(str(payload.get("conversation_sid") or ""))
        state_from = conv.record["state"]
        s.store.update_conversation(conv, {"State": state_to})
        params = webhooks.state_updated(
            s.store,
            conv,
            state_from,
            state_to,
            str(payload.get("reason") or "TIMER"),
            s.webhooks.webhook_sid,
        )
    result = {"conversation_sid": conv.sid, "state_from": state_from, "state_to": state_to}
    return {**result, **_deliver(s, payload.get("webhook_url"), params)}


def _deliver(s: Sim, url: str | None, params: dict[str, str]) -> dict[str, Any]:
    target = url or s.cfg.webhook_url
    if not target:
        return {
            "webhook_url": None,
            "webhook_status": None,
            "webhook_body": None,
            "webhook_error": "no webhook URL (start with --webhook-url or pass webhook_url)",
        }
    return s.webhooks.post(target, params).summary()


def _answered_by(call: dict[str, Any], status: str, answered_by: Any) -> str | None:
    """The AMD result for an answer, refused unless Twilio could report it for this call."""
    mode = call["_extra"]["machine_detection"]
    allowed = answered_by_values(mode)
    if answered_by is None:
        if status == "in-progress" and allowed and call["status"] != "in-progress":
            # Twilio's (blocking) AMD always reports who answered, "unknown" at worst
            raise BadRequest(
                f"call {call['sid']} was created with MachineDetection={mode}: "
                f"answering needs answered_by, one of {', '.join(allowed)}"
            )
        return None
    if status != "in-progress" or call["status"] == "in-progress":
        raise BadRequest("answered_by is only reported when the call is answered")
    if not allowed:
        raise BadRequest(
            f"answered_by {answered_by!r}: call {call['sid']} was created without "
            "MachineDetection, so Twilio reports no AnsweredBy"
        )
    if answered_by not in allowed:
        raise BadRequest(
            f"answered_by {answered_by!r} does not fit MachineDetection={mode}; "
            f"Twilio reports one of {', '.join(allowed)}"
        )
    return str(answered_by)


def call_status(s: Sim, sid: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Ring, answer or end a call; ``answer: true`` also fetches its TwiML like Twilio does."""
    status = payload.get("status", "in-progress")
    if status not in ("ringing", "in-progress", *ENDED):
        raise BadRequest(f"unknown call status {status!r}")
    with s.store.lock:
        call = s.store.calls.get(sid)
        if call is None:
            raise not_found(f"/Calls/{sid}.json")
        if call["status"] in ENDED:
            raise BadRequest(f"call {sid} already ended ({call['status']})")
        set_status(call, status, _answered_by(call, status, payload.get("answered_by")))
        extra, snapshot = call["_extra"], dict(call)
    result: dict[str, Any] = {"call_sid": sid, "status": status}
    if status != "in-progress" or not payload.get("fetch_twiml", True):
        return result
    if extra["twiml"]:
        return {**result, "twiml": extra["twiml"], "webhook_status": None}
    if not extra["url"]:
        return result
    params = {
        "AccountSid": snapshot["account_sid"],
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "in-progress",
        "Called": snapshot["to"],
        "Caller": snapshot["from"],
        "Direction": "outbound-api",
        "From": snapshot["from"],
        "To": snapshot["to"],
    }
    if snapshot["answered_by"]:
        params["AnsweredBy"] = snapshot["answered_by"]
    delivery = s.webhooks.post(extra["url"], params, extra["method"])
    return {**result, "twiml": delivery.body, **delivery.summary()}
