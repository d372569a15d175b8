"""Answering machine detection end to end: the Twilio simulator places and answers an
outbound call with ``MachineDetection`` and posts the signed voice webhook to the web process,
whose TwiML the phone then follows to the relay and the Realtime simulator.

``machine_start`` (``Enable``) leaves the voicemail like ``machine_end_*``; ``fax`` is hung up
on before any stream or Realtime session exists.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from twilio.rest import Client

from common import prompts
from sandbox import dial, phone
from sandbox.twilio_sim.sdk import RebasedHttpClient
from tests.support import http_json, wait_for
from tests.voice.stack import BOT_NUMBER, CALLER, VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")


def answer(stack: VoiceStack, machine_detection: str, answered_by: str) -> tuple[str, ET.Element]:
    """Place the call through the Calls API as the worker does, answer it; the app's TwiML."""
    twilio_url = stack.twilio_url
    client = Client(stack.account_sid, stack.auth_token, http_client=RebasedHttpClient(twilio_url))
    call = client.calls.create(
        to=CALLER,
        from_=BOT_NUMBER,
        url=stack.web_url + "/twilio/voice",
        machine_detection=machine_detection,
    )
    answered: dict[str, Any] = http_json(
        "POST", f"{twilio_url}/_sandbox/calls/{call.sid}", {"answered_by": answered_by}
    )
    assert answered["webhook_status"] == 200
    return call.sid, ET.fromstring(answered["twiml"])


def test_machine_start_leaves_the_voicemail(stack: VoiceStack) -> None:
    sid, root = answer(stack, "Enable", "machine_start")
    stream = root.find("Connect/Stream")
    assert stream is not None
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    assert (params["amd"], params["callSid"]) == ("machine_start", sid)
    caller = phone.Phone(
        stream.get("url", ""), params, speed=4, call_sid=sid, auth_token=stack.auth_token
    )
    caller.connect()
    caller.start_line()
    assert caller.wait_closed(60), "the relay should end a voicemail call by itself"
    assert caller.close_reason == "voicemail_left"
    session = wait_for(lambda: (stack.sessions() or [None])[-1])
    assert session["responses"][0]["text"] == prompts.greeting("voicemail")
    target = dial.StreamTarget(stream.get("url", ""), params, root.find("Connect").get("action"))
    assert dial.after_stream(target, stack.auth_token, sid).verbs == ["Hangup"]


def test_fax_is_hung_up_on_without_a_session(stack: VoiceStack) -> None:
    _, root = answer(stack, "DetectMessageEnd", "fax")
    assert [el.tag for el in root] == ["Hangup"]
    assert stack.sessions() == []  # no stream was named, so OpenAI was never called
