"""The Realtime simulator refuses and answers what the real GA service does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import websocket

from sandbox.realtime_sim.audio import PCM24, PCMU, Vad
from tests.sandbox.realtime_client import (
    KEY,
    SERVER_EVENT,
    connect,
    control,
    running_sim,
    send,
    until,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("rt")) as url:
        yield url


def test_wrong_key_is_401(sim: str):
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(sim, header=["Authorization: Bearer nope"], timeout=5)
    assert err.value.status_code == 401


def test_beta_header_gets_beta_api_shape_disabled_and_4000(sim: str):
    ws = websocket.create_connection(
        sim, header=[f"Authorization: Bearer {KEY}", "OpenAI-Beta: realtime=v1"], timeout=5
    )
    error = json.loads(ws.recv())
    assert error["error"]["code"] == "beta_api_shape_disabled"
    opcode, frame = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 4000


def test_dead_beta_model_is_refused(sim: str):
    url = sim.replace("gpt-realtime-2.1", "gpt-4o-realtime-preview")
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, header=[f"Authorization: Bearer {KEY}"], timeout=5)


def test_beta_session_fields_are_unknown_parameters(sim: str):
    ws = connect(sim)
    send(ws, type="session.update", session={"type": "realtime", "input_audio_format": "g711_ulaw"})
    error, _ = until(ws, "error")
    assert error["error"]["code"] == "unknown_parameter"
    send(ws, type="session.update", session={"modalities": ["audio"]})
    assert until(ws, "error")[0]["error"]["code"] == "unknown_parameter"
    ws.close()


def test_cancel_without_response_and_truncate_past_the_audio_are_errors(sim: str):
    ws = connect(sim)
    send(ws, type="response.cancel")
    assert until(ws, "error")[0]["error"]["code"] == "response_cancel_not_active"
    send(ws, type="session.update", session={"type": "realtime", "audio": {
        "output": {"format": {"type": "audio/pcmu"}}}})  # fmt: skip
    until(ws, "session.updated")
    send(ws, type="response.create", response={"instructions": 'Say exactly "Hi there."'})
    done, seen = until(ws, "response.done")
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in seen if e["type"] == "response.output_audio.delta"
    )
    transcript = next(e for e in seen if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Hi there." and done["response"]["status"] == "completed"
    item_id = transcript["item_id"]
    sent_ms = len(audio) // 8
    send(ws, type="conversation.item.truncate", item_id=item_id, content_index=0,
         audio_end_ms=sent_ms + 200)  # fmt: skip
    error = until(ws, "error")[0]["error"]
    assert error["code"] == "invalid_value" and "shorter than" in error["message"]
    send(ws, type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=300)
    assert until(ws, "conversation.item.truncated")[0]["audio_end_ms"] == 300
    ws.close()


def test_second_response_while_one_is_active_is_refused(sim: str):
    ws = connect(sim)
    send(
        ws, type="response.create", response={"instructions": 'Say exactly "' + "long " * 40 + '"'}
    )
    send(ws, type="response.create")
    assert until(ws, "error")[0]["error"]["code"] == "conversation_already_has_active_response"
    send(ws, type="response.cancel")
    assert until(ws, "response.done")[0]["response"]["status"] == "cancelled"
    ws.close()


def test_bad_json_is_an_error_event_not_a_close(sim: str):
    ws = connect(sim)
    ws.send("{nope")
    assert until(ws, "error")[0]["error"]["code"] == "invalid_json"
    send(ws, type="input_audio_buffer.clear")
    until(ws, "input_audio_buffer.cleared")
    ws.close()


@pytest.mark.parametrize("fmt", [PCMU, PCM24])
def test_vad_finds_speech_start_and_stop_on_the_audio_timeline(fmt):
    vad = Vad()
    events = []
    chunks = [fmt.tone(20, 0, 0)] * 50 + [fmt.tone(20, 300)] * 50 + [fmt.tone(20, 0, 0)] * 50
    for chunk in chunks:
        events += vad.feed(fmt, chunk)
    (start_kind, start_ms), (stop_kind, stop_ms) = events
    assert start_kind == "started" and abs(start_ms - (1000 - vad.prefix_ms)) <= 20
    assert stop_kind == "stopped" and abs(stop_ms - (2000 + vad.silence_ms)) <= 20


def test_speech_over_a_response_cancels_it_and_commits_the_turn(sim: str):
    ws = connect(sim)
    audio_in = {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-live-transcribe"}}
    send(ws, type="session.update", session={"type": "realtime", "audio": {"input": audio_in}})
    until(ws, "session.updated")
    send(
        ws, type="response.create", response={"instructions": 'Say exactly "' + "word " * 60 + '"'}
    )
    until(ws, "response.output_audio.delta")
    for chunk in [PCMU.tone(20, 300)] * 30 + [PCMU.tone(20, 0, 0)] * 40:
        send(ws, type="input_audio_buffer.append", audio=base64.b64encode(chunk).decode())
    cancelled, seen = until(ws, "response.done")
    assert cancelled["response"]["status"] == "cancelled"
    assert cancelled["response"]["status_details"]["reason"] == "turn_detected"
    # The interrupted item ends "incomplete" with what was said so far, in both done events.
    [item] = cancelled["response"]["output"]
    assert item["status"] == "incomplete"
    spoken = item["content"][0]["transcript"]
    assert spoken and ("word " * 60).startswith(spoken)
    [item_done] = [e for e in seen if e["type"] == "response.output_item.done"]
    assert item_done["item"] == item
    assert any(e["type"] == "input_audio_buffer.speech_started" for e in seen)
    until(ws, "input_audio_buffer.committed")
    text = until(ws, "conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert text.startswith("(caller spoke")
    answer = until(ws, "response.done")[0]
    assert answer["response"]["status"] == "completed"
    ws.close()


# ==== out-of-band responses, cancellation events, injected failures ===========================
LONG = 'Say exactly "' + "word " * 60 + '"'


def test_out_of_band_response_runs_beside_the_conversation_and_outlives_speech(sim: str):
    ws = connect(sim)
    audio_in = {"format": {"type": "audio/pcmu"}}
    send(ws, type="session.update", session={"type": "realtime", "audio": {"input": audio_in}})
    until(ws, "session.updated")
    send(ws, type="response.create", response={"instructions": LONG})
    main = until(ws, "response.created")[0]["response"]
    send(ws, type="response.create", response={"conversation": "none", "instructions": LONG})
    oob = until(ws, "response.created")[0]["response"]
    assert oob["conversation_id"] is None and main["conversation_id"].startswith("conv_")
    # The caller talks: only the conversation's response is cancelled.
    for chunk in [PCMU.tone(20, 300)] * 30:
        send(ws, type="input_audio_buffer.append", audio=base64.b64encode(chunk).decode())
    done: dict[str, dict] = {}
    seen: list[dict] = []
    while len(done) < 2:
        event, more = until(ws, "response.done")
        seen += more
        done[event["response"]["id"]] = event["response"]
    assert done[main["id"]]["status"] == "cancelled"
    assert done[main["id"]]["status_details"]["reason"] == "turn_detected"
    assert done[oob["id"]]["status"] == "completed"
    assert done[oob["id"]]["conversation_id"] is None
    errors = [e for e in seen if e["type"] == "error"]
    assert errors == []  # no conversation_already_has_active_response
    [oob_item] = done[oob["id"]]["output"]
    added = [e["item"]["id"] for e in seen if e["type"].startswith("conversation.item.")]
    assert oob_item["id"] not in added  # never part of the conversation
    assert done[main["id"]]["output"][0]["id"] in added
    send(ws, type="conversation.item.truncate", item_id=oob_item["id"], content_index=0,
         audio_end_ms=0)  # fmt: skip
    assert until(ws, "error")[0]["error"]["code"] == "item_truncate_invalid_item_id"
    ws.close()


def test_cancelled_response_ends_its_audio_and_transcript_before_response_done(sim: str):
    ws = connect(sim)
    send(ws, type="response.create", response={"instructions": LONG})
    until(ws, "response.output_audio.delta")
    send(ws, type="response.cancel")
    done, seen = until(ws, "response.done")
    kinds = [e["type"] for e in seen]
    audio_done = kinds.index("response.output_audio.done")
    transcript_done = kinds.index("response.output_audio_transcript.done")
    assert audio_done < transcript_done < kinds.index("response.output_item.done") < len(kinds) - 1
    partial = seen[transcript_done]["transcript"]
    assert partial and partial != "word " * 60 and ("word " * 60).startswith(partial)
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["output"][0]["content"][0]["transcript"] == partial
    for event in seen:
        SERVER_EVENT.validate_python(event)
    ws.close()


def test_out_of_band_response_is_cancelled_only_by_its_id(sim: str):
    ws = connect(sim)
    send(ws, type="response.create", response={"conversation": "none", "instructions": LONG})
    oob = until(ws, "response.created")[0]["response"]["id"]
    send(ws, type="response.cancel")  # no id: the default conversation has nothing active
    assert until(ws, "error")[0]["error"]["code"] == "response_cancel_not_active"
    send(ws, type="response.cancel", response_id=oob)
    done = until(ws, "response.done")[0]["response"]
    assert (done["id"], done["status"]) == (oob, "cancelled")
    ws.close()


def test_injected_failure_ends_the_response_failed_in_the_ga_shape(sim: str):
    control(sim, "/_sandbox/faults?fail_responses=1&fail_code=rate_limit_exceeded")
    try:
        ws = connect(sim)
        send(ws, type="response.create", response={"instructions": 'Say exactly "Hi."'})
        done, seen = until(ws, "response.done")
        assert [e["type"] for e in seen] == ["response.created", "response.done"]
        response = done["response"]
        assert response["status"] == "failed" and response["output"] == []
        error = {
            "type": "server_error",
            "code": "rate_limit_exceeded",
            "message": "The server had an error while processing your request. Sorry about that!",
        }
        assert response["status_details"] == {"type": "failed", "error": error}
        parsed = SERVER_EVENT.validate_python(done)
        assert parsed.response.status_details.error.code == "rate_limit_exceeded"
        # The fault is spent: the next response completes.
        send(ws, type="response.create", response={"instructions": 'Say exactly "Hi."'})
        assert until(ws, "response.done")[0]["response"]["status"] == "completed"
        ws.close()
    finally:
        control(sim, "/_sandbox/reset")
