"""SMS and group MMS replies, end to end: signed webhook → web → Redis → Celery → Twilio sim."""

from __future__ import annotations

import json
import secrets
import threading

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from common.prompts import IDENTITY
from common.twilio_client import RebasedHttpClient
from tests.sms.stack import BOT, BOT_NUMBER, Stack
from tests.support import http_json, wait_for

ALICE, BOB, CAROL = "+14155550100", "+14155550101", "+14155550102"


def rest(stack: Stack) -> Client:
    return Client(
        stack.account_sid,
        stack.auth_token,
        http_client=RebasedHttpClient(stack.twilio_url, timeout=10),
    )


def test_one_to_one_reply_starts_with_identity(sms: Stack) -> None:
    sent = sms.text(ALICE, "Do you sell slide gates?")
    conv = sent["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv)
    assert reply["body"].startswith(IDENTITY + " ")
    assert "Do you sell slide gates?" in reply["body"]  # the simulator echoes the question
    assert json.loads(reply["attributes"])["reply_to"] == sent["message_sid"]
    [request] = sms.chat_requests()
    body = request["body"]
    assert body["model"] == "gpt-5.5"
    assert "max_tokens" not in body and "temperature" not in body
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "Do you sell slide gates?"}


def test_group_replies_only_when_mentioned(sms: Stack) -> None:
    first = sms.text(ALICE, "hey Bob, which gate did you like?", group=[ALICE, BOB])
    conv = first["conversation_sid"]
    assert sms.wait_outcome(first["message_sid"])["outcome"] == "group_not_mentioned"
    assert sms.bot_messages(conv) == []
    assert sms.chat_requests() == []
    mail = sms.text(BOB, "Email me at bob@ai.com", conversation_sid=conv)
    assert sms.wait_outcome(mail["message_sid"])["outcome"] == "group_not_mentioned"
    assert sms.bot_messages(conv) == []

    asked = sms.text(BOB, "@AI: what opener suits a 20 ft swing gate?", conversation_sid=conv)
    [reply] = sms.wait_bot_messages(conv)
    assert reply["body"].startswith(IDENTITY)
    assert json.loads(reply["attributes"])["reply_to"] == asked["message_sid"]
    last = sms.chat_requests()[-1]["body"]["messages"][-1]
    assert last["content"] == f"{BOB}: what opener suits a 20 ft swing gate?"
    participants = sms.state()["conversations"]
    conv_state = (
        participants[conv]
        if isinstance(participants, dict)
        else next(c for c in participants if c["sid"] == conv)
    )
    bots = [p for p in conv_state["participants"] if p.get("identity") == BOT]
    assert len(bots) == 1
    assert bots[0]["messaging_binding"]["projected_address"] == BOT_NUMBER


def test_history_is_newest_twenty_in_order(sms: Stack) -> None:
    conv = sms.text(ALICE, "msg start")["conversation_sid"]
    sms.wait_bot_messages(conv)
    client = rest(sms)
    for i in range(30):
        client.conversations.v1.conversations(conv).messages.create(
            author=ALICE, body=f"old message {i:02d}"
        )
    sms.text(ALICE, "what about the newest?", conversation_sid=conv)
    sms.wait_bot_messages(conv, count=2)
    messages = sms.chat_requests()[-1]["body"]["messages"]
    contents = [m["content"] for m in messages[1:]]
    # 20 newest = 19 earlier messages + the one being answered, oldest first.
    assert len(contents) == 20
    assert contents[0] == "old message 11"
    assert contents[-2] == "old message 29"
    assert contents[-1] == "what about the newest?"


def test_same_webhook_twice_concurrently_gives_one_reply(sms: Stack) -> None:
    conv = sms.text(ALICE, "first")["conversation_sid"]
    sms.wait_bot_messages(conv)
    message = (
        rest(sms)
        .conversations.v1.conversations(conv)
        .messages.create(author=ALICE, body="are your gates solar powered?")
    )
    form = {
        "AccountSid": sms.account_sid,
        "EventType": "onMessageAdded",
        "ConversationSid": conv,
        "MessageSid": message.sid,
        "Index": str(message.index),
        "Author": ALICE,
        "Body": "are your gates solar powered?",
        "Source": "SMS",
        "DateCreated": "2026-11-24T10:00:00Z",
        "Attributes": "{}",
    }
    results: list[tuple[int, str]] = []

    def post() -> None:
        status, body, _ = sms.signed_post(form)
        results.append((status, body.strip()))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(200, "duplicate"), (200, "ok")]
    sms.wait_bot_messages(conv, count=2)
    sms.wait_outcome(message.sid)  # the one delivery is finished
    replies = [
        m
        for m in sms.bot_messages(conv)
        if json.loads(m["attributes"]).get("reply_to") == message.sid
    ]
    assert len(replies) == 1


def test_forged_or_missing_signature_is_refused(sms: Stack) -> None:
    form = {
        "EventType": "onMessageAdded",
        "ConversationSid": "CH" + "0" * 32,
        "MessageSid": "IM" + secrets.token_hex(16),
        "Index": "0",
        "Author": ALICE,
        "Body": "hi",
    }
    status, body, _ = sms.signed_post(form, signature="bm90IGEgc2lnbmF0dXJl")
    assert status == 403 and "signature" in body
    # A valid signature over different parameters does not validate the tampered body.
    good = RequestValidator(sms.auth_token).compute_signature(sms.web_url + "/twilio/convo", form)
    status, _, _ = sms.signed_post({**form, "Body": "tampered"}, signature=good)
    assert status == 403
    status, _, _ = sms.signed_post(form, signature="")
    assert status == 403
    sms.wait_web_outcome("bad_signature", count=3)  # all three refused, none queued
    assert not any(form["MessageSid"] in str(r) for r in sms.log_records("web") if "outcome" in r)
    assert not any(r.get("message_sid") == form["MessageSid"] for r in sms.log_records())
    assert sms.chat_requests() == []


def test_conversation_event_limit(sms: Stack) -> None:
    conv = "CH" + "a" * 32
    outcomes = []
    for i in range(15):
        form = {
            "EventType": "onMessageAdded",
            "ConversationSid": conv,
            "MessageSid": f"IM{i:032x}",
            "Index": str(i),
            "Author": ALICE,
            "Body": f"m{i}",
        }
        status, body, _ = sms.signed_post(form)
        outcomes.append((status, body.strip()))
    assert outcomes[:12] == [(200, "ok")] * 12
    assert outcomes[12:] == [(200, "rate limited; ignored")] * 3
    # Another conversation is unaffected.
    other = {
        "EventType": "onMessageAdded",
        "ConversationSid": "CH" + "b" * 32,
        "MessageSid": "IM" + "f" * 32,
        "Index": "0",
        "Author": ALICE,
        "Body": "hi",
    }
    assert sms.signed_post(other)[:2] == (200, "ok\n")


def test_bad_requests_get_reasons(sms: Stack) -> None:
    status, body, _ = sms.signed_post({"EventType": "onMessageAdded", "Body": "x"})
    assert status == 400 and "ConversationSid" in body
    status, body, _ = sms.signed_post(
        {"EventType": "onParticipantAdded", "ConversationSid": "CH" + "c" * 32}
    )
    assert (status, body.strip()) == (200, "ignored")


def test_bot_system_and_empty_messages_get_no_reply(sms: Stack) -> None:
    conv = sms.text(ALICE, "hello")["conversation_sid"]
    sms.wait_bot_messages(conv)
    base = {"EventType": "onMessageAdded", "ConversationSid": conv, "Index": "5"}
    sids = ["IM" + secrets.token_hex(16) for _ in range(3)]
    messages = [(BOT, "loop?"), ("system", "note"), (ALICE, "  ")]
    for sid, (author, body) in zip(sids, messages, strict=True):
        status, _, _ = sms.signed_post({**base, "MessageSid": sid, "Author": author, "Body": body})
        assert status == 200
    for sid in sids:
        assert sms.wait_outcome(sid)["outcome"] == "skipped"
    assert len(sms.bot_messages(conv)) == 1
    assert len(sms.chat_requests()) == 1


def test_media_only_message_gets_a_helpful_reply(sms: Stack) -> None:
    media = [
        {
            "sid": "ME" + "1" * 32,
            "content_type": "image/jpeg",
            "filename": "gate.jpg",
            "size": 12345,
        }
    ]
    conv = sms.text(ALICE, "", media=media)["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv)
    assert reply["body"].startswith(IDENTITY)
    last = sms.chat_requests()[-1]["body"]["messages"][-1]["content"]
    assert "[sent a photo]" in last


def test_state_updated_answers_newest_message(sms: Stack) -> None:
    conv = sms.text(ALICE, "hello")["conversation_sid"]
    sms.wait_bot_messages(conv)
    client = rest(sms)
    client.conversations.v1.conversations(conv).messages.create(author=ALICE, body="older")
    newest = client.conversations.v1.conversations(conv).messages.create(
        author=ALICE, body="newest question"
    )
    http_json("POST", sms.twilio_url + "/_sandbox/state_updated", {"conversation_sid": conv})
    replies = sms.wait_bot_messages(conv, count=2)
    assert json.loads(replies[-1]["attributes"])["reply_to"] == newest.sid
    assert sms.chat_requests()[-1]["body"]["messages"][-1]["content"] == "newest question"


def _worker_log(sms: Stack, conversation_sid: str) -> list[dict]:
    """The worker's JSON log records about one conversation."""
    out = []
    for line in sms.log_text("worker").splitlines():
        if line.startswith("{") and conversation_sid in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _wait_skipped(sms: Stack, conversation_sid: str, message: str) -> dict:
    return wait_for(
        lambda: next(
            (
                r
                for r in _worker_log(sms, conversation_sid)
                if message in r.get("msg", "") and r.get("outcome") == "skipped"
            ),
            None,
        )
    )


def test_state_closed_gets_no_reply(sms: Stack) -> None:
    """A closed conversation is final (Twilio refuses posts with 50377): no reply, even to an
    unanswered customer message, and the worker says why with the conversation id."""
    conv = sms.text(ALICE, "hello")["conversation_sid"]
    sms.wait_bot_messages(conv)
    rest(sms).conversations.v1.conversations(conv).messages.create(
        author=ALICE, body="one more question"
    )
    http_json(
        "POST",
        sms.twilio_url + "/_sandbox/state_updated",
        {"conversation_sid": conv, "state_to": "closed"},
    )
    record = _wait_skipped(sms, conv, "conversation closed")
    assert record["event_type"] == "onConversationStateUpdated"
    assert len(sms.bot_messages(conv)) == 1
    assert len(sms.chat_requests()) == 1  # only the first message reached the model


def test_state_inactive_answers_only_an_unanswered_message(sms: Stack) -> None:
    conv = sms.text(ALICE, "hello")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv)
    # the newest message is the bot's own reply: going inactive is no reason to speak
    http_json("POST", sms.twilio_url + "/_sandbox/state_updated", {"conversation_sid": conv})
    record = _wait_skipped(sms, conv, "no reply")
    assert record["event_type"] == "onConversationStateUpdated"
    assert [m["sid"] for m in sms.bot_messages(conv)] == [reply["sid"]]
    assert len(sms.chat_requests()) == 1
