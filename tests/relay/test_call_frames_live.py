"""Attacks on a Twilio call's frame path, end to end: a real relay process, the Realtime
simulator upstream, and a signed Media Streams socket that turns hostile mid-call.

The relay reads a call's first message with ``receive_raw`` and every later one from the
gevent hub (``FastWebSocket.start_hub``: relay.hub_io's push parser), so whatever breaks the
protocol after ``connected`` is met by the hub path. The browser surface's equivalents are in
test_browser_session.py; the frame rules themselves in test_codec.py and test_frames.py.
"""

from __future__ import annotations

import base64
import json
import os
import secrets

import pytest

from common import tokens
from relay.codec import encode_header, unmask
from tests.relay.conftest import KEY, Relay, Sim, http, wait_closed, wait_for

pytestmark = pytest.mark.usefixtures("redis_url")

MAX_FRAME_BYTES = 65536


@pytest.fixture(scope="module")
def relay(start_relay, sim) -> Relay:
    return start_relay(sim.url, TRUSTED_PROXY_COUNT="1", MAX_FRAME_BYTES=str(MAX_FRAME_BYTES))


class Call:
    """A Media Streams socket as Twilio opens it (sandbox/phone.py's messages), driven by the
    test so that it can also write raw bytes on the wire."""

    def __init__(self, relay: Relay):
        self.call_sid = "CA" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        token = tokens.mint(KEY, "twilio", 300, call_sid=self.call_sid)
        self.ws = relay.browser(token=token, origin=None, protocols=["audio"], signed=True)
        self.seq = 0

    def send(self, event: dict) -> None:
        self.seq += 1
        self.ws.send(json.dumps({"sequenceNumber": str(self.seq), **event}))

    def start(self) -> None:
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = {
            "accountSid": "AC" + "0" * 32,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {},
        }
        self.send({"event": "start", "streamSid": self.stream_sid, "start": start})
        for chunk in range(1, 11):  # 200 ms of μ-law silence
            media = {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(chunk * 20),
                "payload": base64.b64encode(b"\xff" * 160).decode(),
            }
            self.send({"event": "media", "streamSid": self.stream_sid, "media": media})

    def hear_the_greeting(self) -> dict:
        """The first ``media`` the relay sends: the call is up at both ends."""
        self.ws.settimeout(15)  # a ceiling for a broken relay, not a measurement
        while True:
            event = json.loads(self.ws.recv())
            if event.get("event") == "media":
                assert event["streamSid"] == self.stream_sid
                return event


def oversized_frame() -> bytes:
    """A masked text frame header claiming one byte over the limit, and a little of its
    payload (the rest never comes)."""
    mask = os.urandom(4)
    return encode_header(0x1, MAX_FRAME_BYTES + 1, mask=mask) + unmask(b"x" * 256, mask)


def open_ids(sim: Sim) -> set[str]:
    return {s["id"] for s in sim.open_sessions()}


ATTACKS = {
    "oversized": (oversized_frame, 1009),
    # A client must mask: an unmasked frame is a protocol error.
    "unmasked": (lambda: b"\x81\x11" + b'{"event":"mark"}', 1002),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_hostile_frame_mid_call_is_closed_and_the_next_call_is_served(relay, sim: Sim, attack):
    make, code = ATTACKS[attack]
    before = open_ids(sim)  # another test's session still closing is not this call's
    call = Call(relay)
    call.start()
    call.hear_the_greeting()
    call.ws.sock.sendall(make())
    assert wait_closed(call.ws)[0] == code
    call.ws.close()
    wait_for(lambda: open_ids(sim) <= before)  # the call's OpenAI session was released
    assert http("GET", relay.http_base + "/healthz")[0] == 200
    # The process serves on: a new call gets its greeting and ends normally.
    after = Call(relay)
    after.start()
    after.hear_the_greeting()
    after.send({"event": "stop", "streamSid": after.stream_sid, "stop": {}})
    closing, _, _ = wait_closed(after.ws)
    assert closing not in (1002, 1009, 1011)
    after.ws.close()
    wait_for(lambda: open_ids(sim) <= before)


def test_the_same_attack_as_the_first_message_is_refused_on_the_pull_path(relay):
    # The first frame is read with receive_raw (it may sit in the handshake's buffered
    # reader); the same attack there is refused the same way, and the process serves on.
    # (Its OpenAI session is not waited for here: the relay may still be opening it when the
    # call ends, and a socket that opens in that moment is not closed by TwilioCall.run.)
    call = Call(relay)
    call.ws.sock.sendall(oversized_frame())
    assert wait_closed(call.ws)[0] == 1009
    call.ws.close()
    after = Call(relay)
    after.start()
    after.hear_the_greeting()
    after.ws.close()
