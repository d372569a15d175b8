"""The GPT-Live simulator's handshake and session configuration, over a real WebSocket to a real
simulator process: what the service refuses is refused in its shape, and every server event
parses as the SDK's ``openai.types.live.ServerEvent`` with no undeclared key."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from tests.sandbox.live_client import (
    KEY,
    TRANSFER,
    connect,
    control,
    newest_session,
    recv,
    running_sim,
    send,
    session_config,
    start,
    until,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("live")) as url:
        yield url


@pytest.fixture
def ws(sim: str) -> Iterator[websocket.WebSocket]:
    control(sim, "/_sandbox/reset")
    conn = connect(sim)
    yield conn
    conn.close()


def handshake(url: str, *headers: str) -> tuple[int, dict[str, Any]]:
    """Try to open the WebSocket; (HTTP status, OpenAI error body) of the refusal."""
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, header=list(headers), timeout=5)
    return err.value.status_code, json.loads(err.value.resp_body)


# ==== handshake ==================================================================================
def test_a_missing_or_wrong_bearer_key_is_401(sim: str) -> None:
    status, body = handshake(sim)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert body["error"]["message"] == "Missing bearer auth."
    status, body = handshake(sim, "Authorization: Bearer sk-wrong")
    assert status == 401 and body["error"]["message"] == "Incorrect API key provided."
    status, _ = handshake(sim, f"Authorization: {KEY}")  # not "Bearer <key>"
    assert status == 401
    assert control(sim, "/_sandbox/sessions")[1]["sessions"] == []  # no session was opened


def test_a_query_string_is_400_naming_the_parameter(sim: str) -> None:
    status, body = handshake(sim + "?model=gpt-live-1.1", f"Authorization: Bearer {KEY}")
    assert status == 400
    assert body["error"]["code"] == "unknown_parameter" and body["error"]["param"] == "model"
    assert "session.start" in body["error"]["message"]


def test_an_openai_beta_header_is_refused(sim: str) -> None:
    status, body = handshake(sim, f"Authorization: Bearer {KEY}", "OpenAI-Beta: realtime=v1")
    assert status == 400 and body["error"]["code"] == "beta_header_not_supported"


def test_other_paths_are_404_and_healthz_answers(sim: str) -> None:
    status, _ = handshake(
        sim.replace("/v1/live/sessions", "/v1/realtime"), f"Authorization: Bearer {KEY}"
    )
    assert status == 404
    assert control(sim, "/healthz") == (200, {"status": "ok"})


# ==== session.start ==============================================================================
def test_nothing_before_session_start_and_session_start_once(ws: websocket.WebSocket) -> None:
    send(ws, type="session.input_audio.mute", event_id="evt_early")
    error = recv(ws)
    assert error["type"] == "error" and error["error"]["code"] == "session_not_started"
    assert error["error"]["client_event_id"] == "evt_early"
    session = start(ws)
    assert session["id"].startswith("sess_") and session["status"] == "active"
    assert session["model"] == "gpt-live-1.1" and session["expires_at"] > 0
    assert session["audio"] == {"format": {"type": "audio/pcmu", "rate": 8000},
                                "output": {"voice": "marin"}}  # fmt: skip
    assert session["delegation"]["responses"]["tools"][1] == TRANSFER
    send(ws, type="session.start", session=session_config())
    assert recv(ws)["error"]["code"] == "session_already_started"


def test_defaults_are_resolved_in_session_started(ws: websocket.WebSocket) -> None:
    send(ws, type="session.start", event_id="evt_1", session={"model": "gpt-live-1"})
    started = recv(ws)
    assert started["client_event_id"] == "evt_1"
    session = started["session"]
    assert session["audio"] == {"format": {"type": "audio/pcm", "rate": 24000},
                                "output": {"voice": "marin"}}  # fmt: skip
    assert session["delegation"] is None and session["store"] is False


BAD_CONFIGS = [
    ({"voices": "marin"}, "unknown_parameter", "session.voices"),
    ({"audio": {"output": {"voice": "marin", "speed": 1.2}}}, "unknown_parameter",
     "session.audio.output.speed"),
    ({"audio": {"format": {"type": "audio/pcmu", "rate": 8000, "channels": 1}}},
     "unknown_parameter", "session.audio.format.channels"),
    ({"delegation": {"type": "responses", "responses": {"model": "gpt-5", "tools": [
        {**TRANSFER, "parameter": {}}]}}}, "unknown_parameter",
     "session.delegation.responses.tools[0].parameter"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi",
                                              "lang": "en"}]}]},
     "unknown_parameter", "session.input[0].content[0].lang"),
    ({"audio": {"output": {"voice": "bob"}}}, "invalid_value", "session.audio.output.voice"),
    ({"audio": {"format": {"type": "g711_ulaw", "rate": 8000}}}, "invalid_value",
     "session.audio.format.type"),
    ({"audio": {"format": {"type": "audio/pcmu", "rate": 16000}}}, "invalid_value",
     "session.audio.format.rate"),
    ({"audio": {"format": {"type": "audio/pcm", "rate": 8000}}}, "invalid_value",
     "session.audio.format.rate"),
    ({"audio": {"format": {"type": "audio/pcmu"}}}, "missing_required_parameter",
     "session.audio.format.rate"),
    ({"model": "gpt-live-2"}, "model_not_found", "session.model"),
    ({"model": "gpt-realtime-2.1"}, "model_not_found", "session.model"),
    ({"instructions": 5}, "invalid_type", "session.instructions"),
    ({"store": "no"}, "invalid_type", "session.store"),
    ({"input": [{"role": "developer", "content": [{"text": "x"}]}] * 129},
     "array_above_max_length", "session.input"),
    ({"delegation": {"type": "responses", "responses": {"model": "gpt-5", "tools": [
        {**TRANSFER, "name": "transfer staff"}]}}}, "invalid_value",
     "session.delegation.responses.tools[0].name"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "code", "param"), BAD_CONFIGS)
def test_a_bad_session_start_is_an_error_and_starts_nothing(
    sim: str, ws: websocket.WebSocket, override: dict, code: str, param: str
) -> None:
    send(ws, type="session.start", event_id="evt_bad", session=session_config(**override))
    error = recv(ws)
    assert error["type"] == "error", error
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["client_event_id"] == error["client_event_id"] == "evt_bad"
    assert newest_session(sim)["id"] is None  # not started
    start(ws)  # the same connection can still start a good session


def test_a_missing_model_is_a_missing_required_parameter(ws: websocket.WebSocket) -> None:
    send(ws, type="session.start", session={"instructions": "Hi."})
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("missing_required_parameter", "session.model")


def test_every_built_in_voice_format_and_snapshot_is_accepted(sim: str) -> None:
    voices = ["alloy", "cedar", "marin", "shimmer", "willow"]
    formats = [("audio/pcm", 24000), ("audio/pcm", 16000), ("audio/pcmu", 8000),
               ("audio/pcma", 8000)]  # fmt: skip
    for voice, (kind, rate) in zip(voices, [*formats, formats[0]], strict=True):
        conn = connect(sim)
        audio = {"format": {"type": kind, "rate": rate}, "output": {"voice": voice}}
        assert start(conn, audio=audio, model="gpt-live-1-2026-09-10")["audio"] == audio
        conn.close()
    conn = connect(sim)
    assert start(conn, audio={"output": {"voice": {"id": "voice_123"}}})["audio"]["output"] == {
        "voice": {"id": "voice_123"}
    }
    conn.close()


def test_a_model_past_its_shutdown_date_is_model_not_found(sim: str) -> None:
    assert control(sim, "/_sandbox/models", shutdown="gpt-live-1:2026-01-01")[0] == 200
    try:
        conn = connect(sim)
        send(conn, type="session.start", session=session_config(model="gpt-live-1"))
        error = recv(conn)["error"]
        assert error["code"] == "model_not_found" and "shut down on 2026-01-01" in error["message"]
        assert start(conn, model="gpt-live-1.1")["model"] == "gpt-live-1.1"  # no date: fine
        conn.close()
    finally:
        control(sim, "/_sandbox/models", shutdown="gpt-live-1:")


def test_unknown_event_types_bad_json_and_binary_frames_are_errors(ws: websocket.WebSocket) -> None:
    start(ws)
    send(ws, type="input_audio_buffer.append", audio="")
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "type")
    assert "'session.input_audio.append'" in error["message"]
    ws.send("{nope")
    assert recv(ws)["error"]["code"] == "invalid_json"
    ws.send_binary(b"\x00\x01")
    assert recv(ws)["error"]["code"] == "invalid_event"
    send(ws, type="session.input_audio.append", audio="not base64!")
    assert recv(ws)["error"]["param"] == "audio"
    send(ws, type="session.input_audio.mute", event_id="evt_m")
    muted = recv(ws)  # the session went on through every refusal
    assert (muted["type"], muted["client_event_id"]) == ("session.input_audio.muted", "evt_m")


# ==== session.update =============================================================================
IMMUTABLE = [
    ({"audio": {"output": {"voice": "cedar"}}}, "session.audio"),
    ({"instructions": "New prompt."}, "session.instructions"),
    ({"model": "gpt-live-1"}, "session.model"),
    ({"input": []}, "session.input"),
    ({"delegation": {"type": "client"}}, "session.delegation.type"),
    ({"delegation": None}, "session.delegation.type"),
]


@pytest.mark.parametrize(("update", "param"), IMMUTABLE)
def test_startup_only_fields_are_immutable(
    ws: websocket.WebSocket, update: dict, param: str
) -> None:
    start(ws)
    send(ws, type="session.update", event_id="evt_u", session=update)
    error = recv(ws)
    assert error["type"] == "error"
    assert (error["error"]["code"], error["error"]["param"]) == ("immutable_field_update", param)


def test_an_update_changes_backend_settings_and_keeps_the_rest(ws: websocket.WebSocket) -> None:
    before = start(ws)
    send(ws, type="session.update", session={"colour": "red"})
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("unknown_parameter", "session.colour")
    update = {"delegation": {"type": "responses", "acknowledgement_delay_ms": 300,
                             "responses": {"tools": [TRANSFER],
                                           "tool_choice": "required"}}}  # fmt: skip
    send(ws, type="session.update", event_id="evt_u", session=update)
    updated, _ = until(ws, "session.updated")
    assert updated["client_event_id"] == "evt_u"
    after = updated["session"]
    backend = after["delegation"]["responses"]
    assert backend["tools"] == [TRANSFER] and backend["tool_choice"] == "required"
    assert backend["instructions"] == "Business rules." and backend["model"] == "gpt-5"
    assert after["delegation"]["acknowledgement_delay_ms"] == 300
    assert {k: after[k] for k in ("id", "audio", "instructions", "model")} == {
        k: before[k] for k in ("id", "audio", "instructions", "model")
    }
    bad = {"delegation": {"type": "responses", "responses": {"tools": [{**TRANSFER, "x": 1}]}}}
    send(ws, type="session.update", session=bad)
    error = recv(ws)["error"]
    assert error["param"] == "session.delegation.responses.tools[0].x"


def test_mute_unmute_and_appends_are_acknowledged(ws: websocket.WebSocket) -> None:
    start(ws)
    for kind, ack in (("session.input_audio.mute", "session.input_audio.muted"),
                      ("session.input_audio.unmute", "session.input_audio.unmuted")):  # fmt: skip
        send(ws, type=kind, event_id="evt_" + kind)
        event = recv(ws)
        assert (event["type"], event["client_event_id"]) == (ack, "evt_" + kind)
    send(ws, type="session.thinking.append", content="The caller is a customer.",
         delegation_id=None, event_id="evt_t")  # fmt: skip
    thought = recv(ws)
    assert thought["type"] == "session.thinking.appended" and thought["client_event_id"] == "evt_t"
    assert thought["start_ms"] == thought["end_ms"]
    send(ws, type="session.thinking.append", content="No delegation id.")
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("missing_required_parameter", "delegation_id")
    send(ws, type="session.instructions.append", content="Be kind.", delegation_id="dlg_1")
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "delegation_id")


def test_sessions_record_what_they_received(sim: str, ws: websocket.WebSocket) -> None:
    session = start(ws)
    send(ws, type="session.thinking.append", content="Context.", delegation_id=None)
    until(ws, "session.thinking.appended")
    record = newest_session(sim)
    assert record["id"] == session["id"] and record["open"] is True
    assert record["events_received"] == {"session.start": 1, "session.thinking.append": 1}
    assert record["events"][0]["session"] == session_config()
    assert record["appended"] == [
        {"kind": "thinking", "content": "Context.", "delegation_id": None}
    ]


def test_http_control_rejects_bad_parameters(sim: str) -> None:
    assert control(sim, "/_sandbox/caller_says")[0] == 400
    assert control(sim, "/_sandbox/call_tool", arguments="[1]", name="end_call")[0] == 400
    assert control(sim, "/_sandbox/call_tools", calls="{}")[0] == 400
    assert control(sim, "/_sandbox/end", reason="bored")[0] == 400
    assert control(sim, "/_sandbox/settings", lifetime_s="-1")[0] == 400
    assert control(sim, "/_sandbox/models", shutdown="gpt-4:2020-01-01")[0] == 400
    assert control(sim, "/_sandbox/nope")[0] == 404
    with urllib.request.urlopen(sim.replace("ws://", "http://").split("/v1")[0] + "/healthz") as r:
        assert r.status == 200
