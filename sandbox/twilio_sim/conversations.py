"""Conversations v1 REST resources: conversations, participants, messages.

Paths, form fields and JSON keys are the ones ``twilio.rest.conversations.v1`` sends and
parses. Creates answer 201, deletes 204. A REST-created message fires ``onMessageAdded`` only
when the request carries ``X-Twilio-Webhook-Enabled: true`` (Twilio's loop guard).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, request

from sandbox.twilio_sim import rules, webhooks
from sandbox.twilio_sim.context import form_value, origin, sim
from sandbox.twilio_sim.errors import TwilioError
from sandbox.twilio_sim.paging import page
from sandbox.twilio_sim.records import parse_iso, public
from sandbox.twilio_sim.store import Conversation, Store

bp = Blueprint("conversations", __name__)
MEDIA_SID = re.compile(r"^ME[0-9a-fA-F]{32}$")


def _created(payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return payload, 201


def conversation_url(sid: str) -> str:
    return f"{origin()}/v1/Conversations/{sid}"


def render_conversation(conv: Conversation) -> dict[str, Any]:
    url = conversation_url(conv.sid)
    return {
        **public(conv.record),
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "messages": f"{url}/Messages",
            "webhooks": f"{url}/Webhooks",
            "export": f"{url}/Export",
        },
    }


def render_participant(p: dict[str, Any]) -> dict[str, Any]:
    return {
        **public(p),
        "url": f"{conversation_url(p['conversation_sid'])}/Participants/{p['sid']}",
    }


def render_message(m: dict[str, Any]) -> dict[str, Any]:
    url = f"{conversation_url(m['conversation_sid'])}/Messages/{m['sid']}"
    return {
        **m,
        "url": url,
        "links": {
            "delivery_receipts": f"{url}/Receipts",
            "channel_metadata": f"{url}/ChannelMetadata",
        },
    }


# -- conversations ---------------------------------------------------------------------------
def _initial_state() -> str | None:
    state = form_value("State")
    if state == "closed":
        raise TwilioError(400, 50384)
    return state


def _open(conv: Conversation) -> Conversation:
    """Twilio refuses every change to a closed conversation (50377): it is final."""
    if conv.record["state"] == "closed":
        raise TwilioError(
            400, 50377, f"Can't update conversation {conv.sid} as it's in final closed state"
        )
    return conv


@bp.post("/v1/Conversations")
def create_conversation() -> tuple[dict[str, Any], int]:
    _initial_state()
    conv = sim().store.create_conversation(
        form_value("FriendlyName"),
        form_value("UniqueName"),
        form_value("Attributes"),
        form_value("State"),
    )
    return _created(render_conversation(conv))


@bp.get("/v1/Conversations")
def list_conversations() -> dict[str, Any]:
    store = sim().store
    with store.lock:
        convs = list(store.conversations.values())
    by_sid = {c.sid: c for c in convs}
    return page(
        [c.record for c in convs],
        key=lambda r: r["_seq"],
        render=lambda r: render_conversation(by_sid[r["sid"]]),
        list_key="conversations",
        base_url=f"{origin()}/v1/Conversations",
    )


@bp.get("/v1/Conversations/<sid>")
def fetch_conversation(sid: str) -> dict[str, Any]:
    return render_conversation(sim().store.conversation(sid))


@bp.post("/v1/Conversations/<sid>")
def update_conversation(sid: str) -> dict[str, Any]:
    store = sim().store
    conv = _open(store.conversation(sid))
    store.update_conversation(conv, request.form.to_dict())
    return render_conversation(conv)


@bp.delete("/v1/Conversations/<sid>")
def delete_conversation(sid: str) -> Response:
    store = sim().store
    store.delete_conversation(store.conversation(sid))
    return Response(status=204)


@bp.post("/v1/ConversationWithParticipants")
def create_with_participants() -> tuple[dict[str, Any], int]:
    """Conversation plus up to 10 ``Participant`` JSON strings, all or nothing."""
    raw = request.form.getlist("Participant")
    if len(raw) > 10:
        raise TwilioError(400, 50426, "Request contains too many participants.")
    specs = []
    for item in raw:
        try:
            spec = json.loads(item)
        except ValueError as exc:
            raise TwilioError(400, 50424, f"Invalid Participant JSON: {item}") from exc
        if not isinstance(spec, dict):
            raise TwilioError(400, 50424, f"Participant is not a JSON object: {item}")
        binding = spec.get("messaging_binding") or {}
        specs.append(
            (
                spec.get("identity"),
                binding.get("address"),
                binding.get("proxy_address"),
                binding.get("projected_address"),
                spec.get("attributes"),
            )
        )
    store = sim().store
    _initial_state()
    with store.lock:
        conv = store.create_conversation(
            form_value("FriendlyName"),
            form_value("UniqueName"),
            form_value("Attributes"),
            form_value("State"),
        )
        try:
            for identity, address, proxy, projected, attributes in specs:
                store.add_participant(conv, identity, address, proxy, projected, attributes)
        except TwilioError:
            store.delete_conversation(conv)
            raise
    return _created(render_conversation(conv))


# -- participants ----------------------------------------------------------------------------
@bp.post("/v1/Conversations/<sid>/Participants")
def create_participant(sid: str) -> tuple[dict[str, Any], int]:
    store = sim().store
    conv = _open(store.conversation(sid))
    participant = store.add_participant(
        conv,
        form_value("Identity"),
        form_value("MessagingBinding.Address"),
        form_value("MessagingBinding.ProxyAddress"),
        form_value("MessagingBinding.ProjectedAddress"),
        form_value("Attributes"),
    )
    return _created(render_participant(participant))


@bp.get("/v1/Conversations/<sid>/Participants")
def list_participants(sid: str) -> dict[str, Any]:
    store = sim().store
    conv = store.conversation(sid)
    with store.lock:
        items = list(conv.participants.values())
    return page(
        items,
        key=lambda p: p["_seq"],
        render=render_participant,
        list_key="participants",
        base_url=f"{conversation_url(conv.sid)}/Participants",
    )


@bp.get("/v1/Conversations/<sid>/Participants/<psid>")
def fetch_participant(sid: str, psid: str) -> dict[str, Any]:
    store = sim().store
    return render_participant(store.participant(store.conversation(sid), psid))


@bp.delete("/v1/Conversations/<sid>/Participants/<psid>")
def delete_participant(sid: str, psid: str) -> Response:
    store = sim().store
    store.remove_participant(store.conversation(sid), psid)
    return Response(status=204)


# -- messages --------------------------------------------------------------------------------
@bp.post("/v1/Conversations/<sid>/Messages")
def create_message(sid: str) -> tuple[dict[str, Any], int]:
    s = sim()
    conv = _open(s.store.conversation(sid))
    author = form_value("Author") or "system"
    _check_group_author(s.store, conv, author)
    media = None
    media_sid = form_value("MediaSid")
    if media_sid:
        if not MEDIA_SID.match(media_sid):
            raise TwilioError(400, 20001, f"Invalid MediaSid: {media_sid}")
        media = [
            {
                "sid": media_sid,
                "size": 0,
                "content_type": "application/octet-stream",
                "filename": None,
                "category": "media",
            }
        ]
    date_created = form_value("DateCreated")
    message = s.store.add_message(
        conv,
        author=author,
        body=form_value("Body"),
        attributes=form_value("Attributes"),
        media=media,
        date_created=parse_iso(date_created) if date_created else None,
    )
    if request.headers.get("X-Twilio-Webhook-Enabled", "").lower() == "true" and s.cfg.webhook_url:
        params = webhooks.message_added(s.store, conv, message, "API", s.webhooks.webhook_sid)
        s.webhooks.post_later(s.cfg.webhook_url, params)
    return _created(render_message(message))


def _check_group_author(store: Store, conv: Conversation, author: str) -> None:
    """In a Group MMS conversation every message goes out as MMS from a participant's number,
    so an author who is not a participant (not even ``system``) is refused with 50513."""
    with store.lock:
        members = list(conv.participants.values())
        if not any(rules.is_group_member(p) for p in members):
            return
        if store.author_participant(conv, author) is None:
            raise TwilioError(
                400,
                50513,
                f"Message author should be among Group MMS participants: {author} is not "
                f"a participant of {conv.sid}",
            )


@bp.get("/v1/Conversations/<sid>/Messages")
def list_messages(sid: str) -> dict[str, Any]:
    store = sim().store
    conv = store.conversation(sid)
    with store.lock:
        items = list(conv.messages)
    return page(
        items,
        key=lambda m: m["index"],
        render=render_message,
        list_key="messages",
        base_url=f"{conversation_url(conv.sid)}/Messages",
        ordered=True,
    )


@bp.get("/v1/Conversations/<sid>/Messages/<msid>")
def fetch_message(sid: str, msid: str) -> dict[str, Any]:
    store = sim().store
    return render_message(store.message(store.conversation(sid), msid))


@bp.delete("/v1/Conversations/<sid>/Messages/<msid>")
def delete_message(sid: str, msid: str) -> Response:
    store = sim().store
    store.delete_message(store.conversation(sid), msid)
    return Response(status=204)


# -- participant conversations (look-up by address or identity) ------------------------------
@bp.get("/v1/ParticipantConversations")
def participant_conversations() -> dict[str, Any]:
    address, identity = request.args.get("Address"), request.args.get("Identity")
    if not address and not identity:
        raise TwilioError(400, 20001, "Either Identity or Address must be provided")
    store = sim().store
    rows = []
    with store.lock:
        for conv in store.conversations.values():
            for p in conv.participants.values():
                binding = p["messaging_binding"] or {}
                if (identity and p["identity"] == identity) or (
                    address and binding.get("address") == address
                ):
                    rows.append(_participant_conversation(conv, p))
    return page(
        rows,
        key=lambda r: r["_seq"],
        render=lambda r: public(r),
        list_key="conversations",
        base_url=f"{origin()}/v1/ParticipantConversations",
        filters={k: v for k, v in (("Address", address), ("Identity", identity)) if v},
    )


def _participant_conversation(conv: Conversation, p: dict[str, Any]) -> dict[str, Any]:
    rec = conv.record
    return {
        "account_sid": rec["account_sid"],
        "chat_service_sid": rec["chat_service_sid"],
        "participant_sid": p["sid"],
        "participant_user_sid": None,
        "participant_identity": p["identity"],
        "participant_messaging_binding": p["messaging_binding"],
        "conversation_sid": conv.sid,
        "conversation_unique_name": rec["unique_name"],
        "conversation_friendly_name": rec["friendly_name"],
        "conversation_attributes": rec["attributes"],
        "conversation_date_created": rec["date_created"],
        "conversation_date_updated": rec["date_updated"],
        "conversation_created_by": None,
        "conversation_state": rec["state"],
        "conversation_timers": rec["timers"],
        "links": {
            "participant": f"{conversation_url(conv.sid)}/Participants/{p['sid']}",
            "conversation": conversation_url(conv.sid),
        },
        "_seq": p["_seq"],
    }
