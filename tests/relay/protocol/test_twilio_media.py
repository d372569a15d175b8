"""relay.protocol.twilio_media: what the relay reads from and writes to a Media Stream, and
the checks that make the string splices safe."""

from __future__ import annotations

import base64
import json

import pytest

from relay.protocol import twilio_media
from relay.protocol.twilio_media import StreamWriter

SID = "MZ" + "a1" * 16


def test_written_messages_are_the_json_twilio_documents() -> None:
    writer = StreamWriter()
    writer.bind(SID)
    payload = base64.b64encode(bytes(range(160))).decode()
    assert json.loads(writer.media(payload)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": payload},
    }
    assert json.loads(writer.mark("s3:goodbye_played")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "s3:goodbye_played"},
    }
    assert json.loads(writer.clear()) == {"event": "clear", "streamSid": SID}


@pytest.mark.parametrize(
    "sid",
    ['MZ1","event":"clear', "MZ\\u0022", "MZ 12", "", "MZ" + "1" * 70, "MZ\n1", 42, None],
)
def test_a_stream_sid_that_could_break_the_splice_is_refused(sid: object) -> None:
    assert twilio_media.safe_sid(sid) is None
    msg = {"event": "start", "streamSid": sid, "start": {"streamSid": sid, "callSid": "CA1"}}
    assert twilio_media.parse_start(msg) is None
    with pytest.raises(ValueError):
        StreamWriter().bind(sid)  # type: ignore[arg-type]


def test_mark_names_are_checked_before_splicing() -> None:
    writer = StreamWriter()
    writer.bind(SID)
    with pytest.raises(ValueError):
        writer.mark('a1"}}')


def test_start_carries_the_stream_the_call_and_the_parameters() -> None:
    start = twilio_media.parse_start(
        {
            "event": "start",
            "streamSid": SID,
            "start": {
                "streamSid": SID,
                "callSid": "CA" + "2" * 32,
                "customParameters": {"direction": "inbound", "n": 3},
            },
        }
    )
    assert start == twilio_media.Start(SID, "CA" + "2" * 32, {"direction": "inbound", "n": "3"})
    assert twilio_media.parse_start({"event": "start", "streamSid": SID}) is None


@pytest.mark.parametrize(
    ("media", "payload"),
    [
        ({"payload": "f39/fw=="}, "f39/fw=="),
        ({"payload": 'f3"}'}, None),  # a quote would end the JSON string it is spliced into
        ({"payload": "f3\\u0022"}, None),
        ({"payload": 12}, None),
        ("f39/fw==", None),
        (None, None),
    ],
)
def test_media_payload_is_base64_or_nothing(media: object, payload: str | None) -> None:
    assert twilio_media.media_payload({"event": "media", "media": media}) == payload


def test_marks_and_keys_are_read_safely() -> None:
    assert twilio_media.mark_name({"event": "mark", "mark": {"name": "a1"}}) == "a1"
    assert twilio_media.mark_name({"event": "mark", "mark": "a1"}) is None
    assert twilio_media.dtmf_digit({"event": "dtmf", "dtmf": {"digit": "0"}}) == "0"
    assert twilio_media.dtmf_digit({"event": "dtmf"}) is None
