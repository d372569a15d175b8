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
from sandbox.twilio_sim.call_model import ENDED, Next, answered_by_values, new_call, set_status
from sandbox.twilio_sim.callflow import CallFlow, tone_or_audio
from sandbox.twilio_sim.context import Sim
from sandbox.twilio_sim.dialing import PhoneBehaviour
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
    mode = call["_extra"].get("machine_detection")
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
    """Ring, answer or end a call; ``answer: true`` also fetches its TwiML like Twilio does.

    With ``follow: true`` the answered call is run as Twilio runs it (TwiML followed, streams
    opened: :mod:`sandbox.twilio_sim.callflow`); an end state on a running call is the other
    party hanging up (the stream gets ``stop``)."""
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
    flow = s.flows.get(sid)
    if status in ENDED and flow is not None:
        flow.update(Next("hangup", why="caller"))
        return result
    if status != "in-progress" or not payload.get("fetch_twiml", True):
        return result
    if payload.get("follow"):
        first = (
            Next("twiml", extra["twiml"])
            if extra["twiml"]
            else Next("url", extra["url"] or "", extra["method"], why="answer")
        )
        _follow(s, sid, first, payload)
        return {**result, "following": True}
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


def _follow(s: Sim, sid: str, first: Next, payload: dict[str, Any]) -> CallFlow:
    flow = CallFlow(s, sid)
    flow.pending_speech_ms = int(payload.get("record_speech_ms") or 0)
    s.flows[sid] = flow
    flow.start(first)
    return flow


def call_in(s: Sim, payload: dict[str, Any]) -> dict[str, Any]:
    """A phone calls the bot's number: Twilio asks the number's voice URL for TwiML (a signed
    webhook) and runs it, streams and all. ``url`` defaults to ``--voice-url``."""
    sender = payload.get("from") or "+14155550100"
    to = payload.get("to") or s.cfg.phone_number
    url = payload.get("url") or s.cfg.voice_url
    method = str(payload.get("method") or "POST").upper()
    if not isinstance(sender, str) or not rules.is_e164(sender):
        raise BadRequest("'from' must be an E.164 phone number such as +14155550100")
    if to not in s.cfg.phone_numbers:
        raise BadRequest(f"'to' must be a number of the account: {', '.join(s.cfg.phone_numbers)}")
    if not url:
        raise BadRequest("no voice URL: pass 'url' or start the simulator with --voice-url")
    if method not in ("GET", "POST"):
        raise BadRequest("'method' must be GET or POST")
    call = new_call(s.cfg.account_sid, to, sender, "inbound", {"url": url, "method": method})
    with s.store.lock:
        s.store.calls[call["sid"]] = call
        set_status(call, "ringing")
        set_status(call, "in-progress")
    _follow(s, call["sid"], Next("url", url, method, why="incoming"), payload)
    return {"call_sid": call["sid"], "status": "in-progress", "following": True}


def _flow(s: Sim, sid: str) -> CallFlow:
    flow = s.flows.get(sid)
    if flow is None:
        raise BadRequest(f"call {sid} is not run by the simulator (answer it with follow: true)")
    return flow


def call_log(s: Sim, sid: str) -> dict[str, Any]:
    return _flow(s, sid).snapshot()


def speak(s: Sim, sid: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The caller says something: a tone of ``ms`` (default 1200) or ``ulaw`` base64 audio."""
    flow = _flow(s, sid)
    if flow.done.is_set():
        raise BadRequest(f"call {sid} has ended")
    audio = tone_or_audio(payload)
    on_stream = flow.speak(audio)
    return {"call_sid": sid, "ms": len(audio) // 8, "on": "stream" if on_stream else "record"}


def set_phone(s: Sim, number: str, payload: dict[str, Any]) -> dict[str, Any]:
    if not rules.is_e164(number):
        raise BadRequest("the phone's number must be E.164")
    try:
        s.phones[number] = PhoneBehaviour.parse(payload)
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
    return {"number": number, **s.phones[number].view()}


def settings(s: Sim, payload: dict[str, Any]) -> dict[str, Any]:
    if "speed" in payload:
        speed = payload["speed"]
        if not isinstance(speed, int | float) or not 0.1 <= speed <= 100:
            raise BadRequest("'speed' must be a number from 0.1 to 100")
        s.speed = float(speed)
    return {"speed": s.speed}
