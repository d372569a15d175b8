"""The Realtime simulator refuses and answers what the real GA service does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from sandbox.realtime_sim.audio import PCM24, PCMU, Vad
from tests.support import PYTHON, Proc, base_env, free_port, wait_port

KEY = "sk-sim-test"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    args = [PYTHON, "-m", "sandbox.realtime_sim", "--port", str(port), "--api-key", KEY]
    proc = Proc(
        "realtime-sim", [*args, "--speed", "20"], base_env(), Path(tmp_path_factory.mktemp("rt"))
    )
    wait_port(port, proc=proc.popen)
    yield f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime-2.1"
    proc.stop()


def connect(url: str, **headers: str) -> websocket.WebSocket:
    head = [f"Authorization: Bearer {KEY}", *(f"{k}: {v}" for k, v in headers.items())]
    ws = websocket.create_connection(url, header=head, timeout=10)
    assert json.loads(ws.recv())["type"] == "session.created"
    return ws


def until(ws: websocket.WebSocket, kind: str) -> tuple[dict, list[dict]]:
    seen = []
    while True:
        event = json.loads(ws.recv())
        seen.append(event)
        if event["type"] == kind:
            return event, seen


def send(ws: websocket.WebSocket, **event) -> None:
    ws.send(json.dumps(event))


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
    audio_in = {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-transcribe"}}
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
