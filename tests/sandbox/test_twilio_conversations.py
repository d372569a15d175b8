"""The Twilio simulator's Conversations API, driven by the official twilio SDK."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from tests.sandbox.conftest import BOT_NUMBER, TwilioSim, http_json

ALICE, BOB, CAROL = "+14155550100", "+14155550101", "+14155550102"
SID = {p: re.compile(rf"^{p}[0-9a-f]{{32}}$") for p in ("CH", "MB", "IM", "IS", "MG")}


def _auth(sim: TwilioSim) -> dict[str, str]:
    token = base64.b64encode(f"{sim.account_sid}:{sim.auth_token}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_conversation_participants_and_messages(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create(friendly_name="Support")
    assert SID["CH"].match(conv.sid) and SID["IS"].match(conv.chat_service_sid)
    assert (conv.state, conv.friendly_name, conv.account_sid) == (
        "active",
        "Support",
        twilio.account_sid,
    )
    assert conv.url == f"{twilio.url}/v1/Conversations/{conv.sid}"
    thread = client.conversations.v1.conversations(conv.sid)
    sms = thread.participants.create(
        messaging_binding_address=ALICE, messaging_binding_proxy_address=BOT_NUMBER
    )
    bot = thread.participants.create(identity="gateframes-bot", attributes='{"role": "bot"}')
    assert SID["MB"].match(sms.sid)
    assert sms.messaging_binding == {
        "type": "sms",
        "address": ALICE,
        "proxy_address": BOT_NUMBER,
    }
    assert (bot.identity, bot.messaging_binding, bot.attributes) == (
        "gateframes-bot",
        None,
        '{"role": "bot"}',
    )
    first = thread.messages.create(body="hello")  # no author: Twilio uses "system"
    second = thread.messages.create(
        author="gateframes-bot", body="hi!", attributes=json.dumps({"reply_to": first.sid})
    )
    assert SID["IM"].match(first.sid)
    assert (first.index, first.author, first.participant_sid) == (0, "system", None)
    assert (second.index, second.author, second.participant_sid) == (1, "gateframes-bot", bot.sid)
    assert json.loads(second.attributes) == {"reply_to": first.sid}
    assert second.delivery["total"] == 1  # the SMS participant
    assert second.date_created is not None and second.url.startswith(twilio.url)
    fetched = thread.messages(second.sid).fetch()
    assert (fetched.body, fetched.index) == ("hi!", 1)
    assert [p.sid for p in thread.participants.list()] == [sms.sid, bot.sid]
    assert client.conversations.v1.conversations(conv.sid).fetch().friendly_name == "Support"
    state = twilio.conversation_state(conv.sid)
    assert [m["body"] for m in state["messages"]] == ["hello", "hi!"]
    assert {p["sid"] for p in state["participants"]} == {sms.sid, bot.sid}


def test_message_validation_and_delete(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    thread = client.conversations.v1.conversations(conv.sid)
    with pytest.raises(TwilioRestException) as empty:
        thread.messages.create(author="bot")
    assert (empty.value.status, empty.value.code) == (400, 50503)
    with pytest.raises(TwilioRestException) as long:
        thread.messages.create(author="bot", body="x" * 1601)
    assert long.value.status == 400
    with pytest.raises(TwilioRestException) as missing:
        client.conversations.v1.conversations("CH" + "0" * 32).messages.create(body="x")
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert client.conversations.v1.conversations(conv.sid).delete() is True
    assert twilio.state()["conversations"] == []


def test_list_desc_pages_through_next_page_urls(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    thread = client.conversations.v1.conversations(conv.sid)
    for i in range(7):
        thread.messages.create(author="bot", body=f"m{i}")
    newest = thread.messages.list(order="desc", limit=5, page_size=2)
    assert [m.index for m in newest] == [6, 5, 4, 3, 2]
    assert [m.index for m in thread.messages.list(page_size=3)] == list(range(7))
    gets = [
        r
        for r in twilio.control("GET", "requests")[1]
        if r["method"] == "GET" and r["path"].endswith("/Messages")
    ]
    # limit=5 with 2 per page: three pages, the later ones through meta.next_page_url
    assert [r["query"].get("PageToken") for r in gets[:3]] == [None, ["PA5"], ["PA3"]]
    assert all(r["query"]["Order"] == ["desc"] for r in gets[:3])


def test_list_meta_is_absolute_and_keyset_stable(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    thread = client.conversations.v1.conversations(conv.sid)
    for i in range(3):
        thread.messages.create(body=f"m{i}")
    base = f"{twilio.url}/v1/Conversations/{conv.sid}/Messages"
    status, page = http_json("GET", f"{base}?Order=desc&PageSize=2", headers=_auth(twilio))
    assert status == 200
    meta = page["meta"]
    assert meta["key"] == "messages" and (meta["page"], meta["page_size"]) == (0, 2)
    assert meta["first_page_url"] == f"{base}?Order=desc&PageSize=2&Page=0"
    assert meta["previous_page_url"] is None
    assert meta["next_page_url"].startswith(base + "?")
    assert [m["index"] for m in page["messages"]] == [2, 1]
    thread.messages.create(body="arrived while paging")  # index 3 must not shift page 2
    _, page2 = http_json("GET", meta["next_page_url"], headers=_auth(twilio))
    assert [m["index"] for m in page2["messages"]] == [0]
    assert page2["meta"]["next_page_url"] is None
    _, back = http_json("GET", page2["meta"]["previous_page_url"], headers=_auth(twilio))
    assert [m["index"] for m in back["messages"]] == [2, 1]
    _, full = http_json("GET", f"{base}?PageSize=100", headers=_auth(twilio))
    assert full["meta"]["page_size"] == 100


def test_page_size_over_100_is_refused_not_clamped(twilio: TwilioSim) -> None:
    """Twilio's v1 lists refuse PageSize outside 1..100; a silent clamp would hide a caller
    that asks for more (the SDK sends ``limit`` as the PageSize)."""
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    base = f"{twilio.url}/v1/Conversations/{conv.sid}/Messages"
    for size in ("101", "500", "0"):
        status, body = http_json("GET", f"{base}?PageSize={size}", headers=_auth(twilio))
        assert (status, body["code"], body["status"]) == (400, 20001, 400)
        assert "PageSize" in body["message"]
    # the SDK turns a failed list page into a plain TwilioException carrying the response
    with pytest.raises(TwilioException) as refused:
        client.conversations.v1.conversations(conv.sid).messages.list(order="desc", limit=150)
    assert refused.value.args[1].status_code == 400


def test_duplicate_participants_answer_409(twilio: TwilioSim) -> None:
    client = twilio.client()
    one = client.conversations.v1.conversations.create()
    thread = client.conversations.v1.conversations(one.sid)
    thread.participants.create(identity="gateframes-bot")
    thread.participants.create(
        messaging_binding_address=ALICE, messaging_binding_proxy_address=BOT_NUMBER
    )
    with pytest.raises(TwilioRestException) as same_identity:
        thread.participants.create(identity="gateframes-bot")
    assert (same_identity.value.status, same_identity.value.code) == (409, 50433)
    with pytest.raises(TwilioRestException) as same_binding:
        thread.participants.create(
            messaging_binding_address=ALICE, messaging_binding_proxy_address=BOT_NUMBER
        )
    assert (same_binding.value.status, same_binding.value.code) == (409, 50416)
    # the address + proxy pair is unique across open conversations, too
    two = client.conversations.v1.conversations.create()
    with pytest.raises(TwilioRestException) as elsewhere:
        client.conversations.v1.conversations(two.sid).participants.create(
            messaging_binding_address=ALICE, messaging_binding_proxy_address=BOT_NUMBER
        )
    assert (elsewhere.value.status, elsewhere.value.code) == (409, 50416)
    assert one.sid in elsewhere.value.msg
    with pytest.raises(TwilioRestException) as both:
        thread.participants.create(identity="x", messaging_binding_address=BOB)
    assert (both.value.status, both.value.code) == (400, 50211)
    with pytest.raises(TwilioRestException) as bad:
        thread.participants.create(messaging_binding_address="4155550100")
    assert (bad.value.status, bad.value.code) == (400, 50407)


def test_group_mms_rules(twilio: TwilioSim) -> None:
    client = twilio.client()
    conversations = client.conversations.v1.conversations
    group = conversations.create(friendly_name="GF Group")
    members = conversations(group.sid).participants
    for number in (ALICE, BOB):
        members.create(messaging_binding_address=number)
    bot = members.create(identity="gateframes-bot", messaging_binding_projected_address=BOT_NUMBER)
    assert bot.messaging_binding == {"type": "sms", "projected_address": BOT_NUMBER}
    with pytest.raises(TwilioRestException) as twice:
        members.create(messaging_binding_address=BOB)
    assert (twice.value.status, twice.value.code) == (409, 50437)
    with pytest.raises(TwilioRestException) as foreign:
        members.create(messaging_binding_address="+442079460958")
    assert (foreign.value.status, foreign.value.code) == (400, 50435)
    with pytest.raises(TwilioRestException) as chat_only:
        members.create(identity="someone")
    assert (chat_only.value.status, chat_only.value.code) == (400, 50434)
    for i in range(7):  # 3 present + 7 = 10, the Group MMS maximum
        members.create(messaging_binding_address=f"+1415555020{i}")
    with pytest.raises(TwilioRestException) as full:
        members.create(messaging_binding_address="+14155550299")
    assert (full.value.status, full.value.code) == (400, 50436)
    assert len(members.list()) == 10
    # a second open group with the very same phones and projected address is refused
    copy = conversations.create()
    for number in (ALICE, BOB, *(f"+1415555020{i}" for i in range(7))):
        conversations(copy.sid).participants.create(messaging_binding_address=number)
    with pytest.raises(TwilioRestException) as duplicate:
        conversations(copy.sid).participants.create(
            identity="gateframes-bot", messaging_binding_projected_address=BOT_NUMBER
        )
    assert (duplicate.value.status, duplicate.value.code) == (409, 50438)


def test_conversation_with_participants_is_all_or_nothing(twilio: TwilioSim) -> None:
    client = twilio.client()
    made = client.conversations.v1.conversation_with_participants.create(
        friendly_name="trio",
        participant=[
            json.dumps({"messaging_binding": {"address": ALICE}}),
            json.dumps({"messaging_binding": {"address": BOB}}),
            json.dumps(
                {
                    "identity": "gateframes-bot",
                    "messaging_binding": {"projected_address": BOT_NUMBER},
                }
            ),
        ],
    )
    assert len(twilio.conversation_state(made.sid)["participants"]) == 3
    with pytest.raises(TwilioRestException) as refused:
        client.conversations.v1.conversation_with_participants.create(
            participant=[
                json.dumps({"messaging_binding": {"address": CAROL}}),
                json.dumps({"messaging_binding": {"address": "+33612345678"}}),
            ]
        )
    assert refused.value.code == 50435
    assert [c["sid"] for c in twilio.state()["conversations"]] == [made.sid]
    found = client.conversations.v1.participant_conversations.list(address=BOB)
    assert [(f.conversation_sid, f.conversation_friendly_name) for f in found] == [
        (made.sid, "trio")
    ]


def test_rest_requests_need_basic_auth(twilio: TwilioSim) -> None:
    with pytest.raises(TwilioRestException) as denied:
        twilio.client(token="wrong").conversations.v1.conversations.create()
    assert (denied.value.status, denied.value.code) == (401, 20003)
    status, body = http_json("GET", f"{twilio.url}/v1/Conversations")  # no credentials
    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    status, body = http_json("GET", f"{twilio.url}/v1/Nothing", headers=_auth(twilio))
    assert (status, body["code"]) == (404, 20404)
    assert twilio.state()["conversations"] == []  # nothing was created by the refused call


def test_concurrent_writers_get_unique_contiguous_indexes(twilio: TwilioSim) -> None:
    conv = twilio.client().conversations.v1.conversations.create()

    def writer(n: int) -> list[int]:
        thread = twilio.client().conversations.v1.conversations(conv.sid)  # a client per thread
        return [thread.messages.create(author=f"w{n}", body=f"{n}-{i}").index for i in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        indexes = [i for batch in pool.map(writer, range(8)) for i in batch]
    assert sorted(indexes) == list(range(80))
    listed = twilio.client().conversations.v1.conversations(conv.sid).messages.list(limit=100)
    assert [m.index for m in listed] == list(range(80))


def test_closed_conversation_refuses_changes(twilio: TwilioSim) -> None:
    client = twilio.client()
    conversations = client.conversations.v1.conversations
    with pytest.raises(TwilioRestException) as born_closed:
        conversations.create(state="closed")
    assert (born_closed.value.status, born_closed.value.code) == (400, 50384)
    conv = conversations.create()
    thread = conversations(conv.sid)
    thread.messages.create(author="gateframes-bot", body="before")
    thread.update(state="closed")
    with pytest.raises(TwilioRestException) as message:
        thread.messages.create(author="gateframes-bot", body="after")
    assert (message.value.status, message.value.code) == (400, 50377)
    with pytest.raises(TwilioRestException) as participant:
        thread.participants.create(identity="late")
    assert participant.value.code == 50377
    with pytest.raises(TwilioRestException) as reopen:
        thread.update(state="active")
    assert reopen.value.code == 50377
    state = twilio.conversation_state(conv.sid)
    assert [m["body"] for m in state["messages"]] == ["before"]
    assert state["participants"] == [] and state["state"] == "closed"


def test_group_mms_author_must_be_a_participant(twilio: TwilioSim) -> None:
    client = twilio.client()
    conversations = client.conversations.v1.conversations
    group = conversations.create()
    members = conversations(group.sid).participants
    for number in (ALICE, BOB):
        members.create(messaging_binding_address=number)
    thread = conversations(group.sid)
    for stranger in ("gateframes-bot", "system", CAROL):  # the bot has not joined yet
        with pytest.raises(TwilioRestException) as refused:
            thread.messages.create(author=stranger, body="hello")
        assert (refused.value.status, refused.value.code) == (400, 50513)
    members.create(identity="gateframes-bot", messaging_binding_projected_address=BOT_NUMBER)
    sent = thread.messages.create(author="gateframes-bot", body="hello")
    by_phone = thread.messages.create(author=ALICE, body="hi")
    assert (sent.index, by_phone.index) == (0, 1)
    assert [m["body"] for m in twilio.conversation_state(group.sid)["messages"]] == [
        "hello",
        "hi",
    ]
    # a 1:1 SMS conversation (address + proxy) is not Group MMS: any author may post
    one = conversations.create()
    conversations(one.sid).participants.create(
        messaging_binding_address=CAROL, messaging_binding_proxy_address=BOT_NUMBER
    )
    assert conversations(one.sid).messages.create(author="gateframes-bot", body="ok").index == 0
