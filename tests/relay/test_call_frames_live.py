"""Attacks on a Twilio call's frame path, end to end: a real relay process, the Realtime
simulator upstream, and a signed Media Streams socket that turns hostile mid-call.

The relay reads a call's first message with ``receive_raw`` and every later one from the
gevent hub (``FastWebSocket.start_hub``: relay.wire.hub_io's push parser), so whatever breaks the
protocol after ``connected`` is met by the hub path. The browser surface's equivalents are in
test_browser_session.py; the frame rules themselves in test_codec.py and test_frames.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from common import tokens
from relay.wire.codec import encode_header, unmask
from relay.wire.hub_io import OUTBOX_LIMIT
from tests.relay.conftest import KEY, Relay, Sim, http, metric, run_sim, wait_closed, wait_for

pytestmark = pytest.mark.usefixtures("redis_url")

MAX_FRAME_BYTES = 65536


@pytest.fixture(scope="module")
def relay(start_relay, sim) -> Relay:
    return start_relay(sim.url, TRUSTED_PROXY_COUNT="1", MAX_FRAME_BYTES=str(MAX_FRAME_BYTES))


class Call:
    """A Media Streams socket as Twilio opens it (sandbox/phone.py's messages), driven by the
    test so that it can also write raw bytes on the wire."""

    def __init__(self, relay: Relay, sockopt: list[tuple[int, int, int]] | None = None):
        self.call_sid = "CA" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        token = tokens.mint(KEY, "twilio", 300, call_sid=self.call_sid)
        self.ws = relay.browser(
            token=token, origin=None, protocols=["audio"], signed=True, sockopt=sockopt
        )
        self.seq = 0

    def send(self, event: dict) -> None:
        self.seq += 1
        self.ws.send(json.dumps({"sequenceNumber": str(self.seq), **event}))

    def media(self, chunk: int, audio: bytes) -> None:
        media = {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(chunk * 20),
            "payload": base64.b64encode(audio).decode(),
        }
        self.send({"event": "media", "streamSid": self.stream_sid, "media": media})

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
            self.media(chunk, b"\xff" * 160)

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


def test_the_same_attack_as_the_first_message_is_refused_on_the_pull_path(relay, sim: Sim):
    # The first frame is read with receive_raw (it may sit in the handshake's buffered
    # reader); the same attack there is refused the same way, and the process serves on.
    before = open_ids(sim)
    call = Call(relay)
    call.ws.sock.sendall(oversized_frame())
    assert wait_closed(call.ws)[0] == 1009
    call.ws.close()
    # An OpenAI socket still opening when the call ended is closed once it opens.
    wait_for(lambda: open_ids(sim) <= before)
    after = Call(relay)
    after.start()
    after.hear_the_greeting()
    after.ws.close()


# -- a Twilio that stops reading ------------------------------------------------------------
@pytest.fixture(scope="module")
def echo_sim(logs_dir) -> Iterator[Sim]:
    """The Realtime simulator in echo mode: every appended chunk comes back as audio at once,
    so a caller's audio turns into as much audio for the relay to send back as we like."""
    yield from run_sim(logs_dir, name="realtime-sim-echo", echo=True)


@pytest.fixture(scope="module")
def echo_relay(start_relay, echo_sim) -> Relay:
    return start_relay(echo_sim.url, name="relay-echo", TRUSTED_PROXY_COUNT="1")


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


def test_a_twilio_that_stops_reading_ends_its_call_and_the_relay_holds_no_more(
    echo_relay: Relay, echo_sim: Sim
):
    # A stream that takes no audio (its receive window closed: a 4 KiB buffer, never read)
    # while the relay has far more to send than its backlog may hold: up to 24 MiB of echoed
    # audio against OUTBOX_LIMIT (8 MiB) plus the kernel's buffers.
    pid = echo_relay.proc.popen.pid
    before = open_ids(echo_sim)
    rss_before = rss_kib(pid)
    call = Call(echo_relay, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    call.start()
    second = b"\x7f" * 8000  # one second of μ-law per message
    sent = 0
    with contextlib.suppress(ConnectionError):  # the relay ends the call before the last
        for chunk in range(1, 1 + (24 << 20) // len(second)):
            call.media(chunk, second)
            sent += len(second)
    assert OUTBOX_LIMIT < sent < 24 << 20
    stalled = re.compile(r"Twilio stopped reading the call's audio: peer not reading: (\d+) bytes")
    wait_for(lambda: stalled.search(echo_relay.log()))
    [log_line] = [ln for ln in echo_relay.log().splitlines() if stalled.search(ln)]
    assert call.call_sid in log_line
    # What it held when it gave up: the limit and at most one message more.
    held = int(stalled.search(log_line).group(1))
    assert OUTBOX_LIMIT < held <= OUTBOX_LIMIT + 2 * len(second)
    wait_for(lambda: open_ids(echo_sim) <= before)  # its OpenAI session was released
    label = 'relay_sessions_total{reason="twilio_stalled",surface="twilio"}'
    wait_for(lambda: metric(echo_relay, label) >= 1)
    # The backlog went with the call; a relay holding all it was sent would have grown by
    # more than 24 MiB (the allocator may keep some of the freed 8 MiB).
    assert rss_kib(pid) - rss_before < 16 << 10
    # The socket is closed: what reached the kernel before is readable, then the end.
    call.ws.settimeout(15)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            call.ws.recv_data_frame(True)
    call.ws.close()
    # The relay serves on: the next call's audio comes back.
    assert http("GET", echo_relay.http_base + "/healthz")[0] == 200
    after = Call(echo_relay)
    after.start()
    assert after.hear_the_greeting()["media"]["payload"]  # the echo of its first audio
    after.send({"event": "stop", "streamSid": after.stream_sid, "stop": {}})
    assert wait_closed(after.ws)[0] == 1000
    after.ws.close()


# -- calls that end badly release every socket at once ----------------------------------------
def socket_fds(pid: int) -> dict[str, str]:
    """The relay's socket descriptors: inode → fd."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                found[target[8:-1]] = fd
    return found


def dead_socket_fds(pid: int) -> list[str]:
    """Descriptors of sockets the kernel no longer lists (closed connections whose fd the
    relay still holds: released only when the garbage collector gets to them)."""
    held = socket_fds(pid)
    for table in ("tcp", "tcp6", "udp", "udp6", "unix"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            held.pop(fields[6] if table == "unix" else fields[9], None)
    return sorted(held.values())


def vanish_after_start(relay: Relay) -> None:
    call = Call(relay)
    call.start()  # the relay opens OpenAI for it; the caller is gone before it is open
    call.ws.sock.close()


def vanish_after_upgrade(relay: Relay) -> None:
    Call(relay).ws.sock.close()


def oversized_first(relay: Relay) -> None:
    call = Call(relay)
    call.ws.sock.sendall(oversized_frame())
    assert wait_closed(call.ws)[0] == 1009
    call.ws.close()


ENDINGS = {
    "vanish_after_start": vanish_after_start,
    "vanish_after_upgrade": vanish_after_upgrade,
    "oversized_first": oversized_first,
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_calls_that_end_badly_leave_no_descriptor_behind(relay: Relay, sim: Sim, ending):
    # An OpenAI socket whose handshake was cut short used to be shut down but its descriptor
    # kept (its makefile reader held it) until the GC ran: an attacker ending calls this way
    # could hold the relay's descriptors far longer than the calls lasted.
    pid = relay.proc.popen.pid
    before = open_ids(sim)
    for _ in range(5):
        ENDINGS[ending](relay)
    wait_for(lambda: open_ids(sim) <= before)  # every OpenAI session of theirs was closed
    wait_for(lambda: not dead_socket_fds(pid), timeout=5)
