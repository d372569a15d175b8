"""The Realtime simulator serves a model until its shutdown date, as the service does, and takes
transcription fields only with the models the SDK allows them for. Its dates are its own copy,
checked here against the pinned SDK; the simulator imports nothing from the product."""

from __future__ import annotations

import ast
import json
import urllib.error
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
import websocket
from openai.types.realtime import AudioTranscription

from sandbox.realtime_sim import models, schema
from tests import sdk_notes
from tests.sandbox.realtime_client import (
    KEY,
    SERVER_EVENT,
    connect,
    control,
    running_sim,
    send,
    until,
)
from tests.support import ROOT

PREFIX = "session.audio.input.transcription"


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("rt")) as url:
        yield url


@pytest.fixture
def sim(sim_url: str) -> Iterator[str]:
    control(sim_url, "/_sandbox/reset")
    yield sim_url
    control(sim_url, "/_sandbox/reset")  # the real date again for the next test


# -- the simulator's own copy, against the SDK --------------------------------------------------
def test_the_simulators_dates_are_the_sdks() -> None:
    sdk = {
        **sdk_notes.shutdowns(sdk_notes.REALTIME_NOTES),
        **sdk_notes.shutdowns(sdk_notes.TRANSCRIPTION_NOTES),
    }
    assert sdk == models.SHUTDOWNS
    assert models.SHUTDOWNS["gpt-realtime-mini"] == date(2027, 1, 20)
    assert models.SHUTDOWNS["whisper-1"] == date(2027, 2, 26)


def test_the_simulators_field_rules_are_the_sdks() -> None:
    note = lambda field: sdk_notes.field_note(AudioTranscription, field)  # noqa: E731
    assert sdk_notes.models_named(note("keywords"), "Supported by") == set(models.KEYWORD_MODELS)
    assert sdk_notes.models_named(note("languages"), "Supported by") == set(models.KEYWORD_MODELS)
    assert sdk_notes.models_named(note("delay"), "Only supported with") == set(models.DELAY_MODELS)
    assert sdk_notes.models_named(note("prompt"), "Prompt is not supported with") == set(
        models.NO_PROMPT_MODELS
    )
    annotation = AudioTranscription.model_fields["model"].annotation
    assert set(models.TRANSCRIPTION_MODELS) == sdk_notes.literals(annotation)
    assert {"gpt-live-transcribe", "gpt-transcribe"} <= set(models.TRANSCRIPTION_MODELS)


def test_the_realtime_simulator_imports_nothing_from_the_product() -> None:
    product = ("common", "relay", "tasks", "webhooks")
    for path in sorted((ROOT / "sandbox" / "realtime_sim").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):  # function-level imports too
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] in product], (path.name, names)


# -- transcription fields, model by model (the check itself, on a given date) ----------------
def refusal(transcription: dict[str, Any], today: date = date(2026, 12, 7)) -> tuple | None:
    event = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"transcription": transcription}}},
    }
    found = schema.check(orjson.dumps(event), event, today)
    return None if found is None else (found.code, found.param)


@pytest.mark.parametrize(
    "transcription",
    [
        {"model": "gpt-live-transcribe", "keywords": ["GateFrames"], "languages": ["en", "es"]},
        {"model": "gpt-transcribe", "keywords": ["GateFrames"], "language": "en"},
        {"model": "gpt-realtime-whisper", "delay": "low", "language": "en"},
        {"model": "gpt-4o-mini-transcribe", "prompt": "Gate openers.", "language": "en"},
        {"model": "whisper-1"},
    ],
)
def test_fields_the_model_takes_are_accepted(transcription: dict[str, Any]) -> None:
    assert refusal(transcription) is None


@pytest.mark.parametrize(
    ("transcription", "code", "field"),
    [
        ({"model": "whisper-1", "keywords": ["GateFrames"]}, "unsupported_parameter", "keywords"),
        ({"model": "gpt-4o-transcribe", "languages": ["en"]}, "unsupported_parameter", "languages"),
        ({"model": "gpt-realtime-whisper", "keywords": ["x"]}, "unsupported_parameter", "keywords"),
        ({"keywords": ["GateFrames"]}, "unsupported_parameter", "keywords"),
        ({"model": "gpt-live-transcribe", "delay": "low"}, "unsupported_parameter", "delay"),
        ({"model": "gpt-realtime-whisper", "prompt": "x"}, "unsupported_parameter", "prompt"),
        (
            {"model": "gpt-transcribe", "language": "en", "languages": ["en"]},
            "invalid_value",
            "languages",
        ),
        ({"model": "gpt-9-transcribe"}, "invalid_value", "model"),
        ({"model": "gpt-live-transcribe", "delay": "instant"}, "invalid_value", "delay"),
    ],
)
def test_fields_the_model_does_not_take_are_refused(
    transcription: dict[str, Any], code: str, field: str
) -> None:
    assert refusal(transcription) == (code, f"{PREFIX}.{field}")


def test_a_transcription_model_is_served_until_its_shutdown_date() -> None:
    for model in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"):
        assert refusal({"model": model}, date(2027, 2, 25)) is None
        gone = refusal({"model": model}, date(2027, 2, 26))
        assert gone == ("model_not_found", f"{PREFIX}.model")
    assert refusal({"model": "gpt-live-transcribe"}, date(2030, 1, 1)) is None


# -- the running simulator ----------------------------------------------------------------------
def set_today(sim: str, day: str) -> dict:
    return control(sim, f"/_sandbox/clock?today={day}")


def test_a_session_model_past_its_date_is_refused_at_connect(sim: str) -> None:
    url = sim.replace("gpt-realtime-2.1", "gpt-realtime-mini")
    assert set_today(sim, "2027-01-19") == {"today": "2027-01-19", "fixed": True}
    connect(url).close()  # the day before: still served
    set_today(sim, "2027-01-20")
    for model in ("gpt-realtime-mini", "gpt-realtime", "gpt-realtime-2025-08-28"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                sim.replace("gpt-realtime-2.1", model),
                header=[f"Authorization: Bearer {KEY}"],
                timeout=5,
            )
        assert refused.value.status_code == 400
        error = json.loads(refused.value.resp_body)["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "model_not_found"
        assert f"`{model}` has been deprecated" in error["message"]
    connect(sim).close()  # gpt-realtime-2.1 has no announced shutdown


def test_a_session_update_naming_a_gone_model_configures_nothing(sim: str) -> None:
    set_today(sim, "2027-03-01")
    ws = connect(sim)
    live = {"input": {"transcription": {"model": "gpt-live-transcribe"}}}
    send(
        ws,
        type="session.update",
        session={"type": "realtime", "instructions": "Before.", "audio": live},
    )
    before = until(ws, "session.updated")[0]["session"]
    assert before["audio"]["input"]["transcription"] == {"model": "gpt-live-transcribe"}
    for session, param in (
        ({"model": "gpt-realtime"}, "session.model"),
        ({"audio": {"input": {"transcription": {"model": "whisper-1"}}}}, f"{PREFIX}.model"),
    ):
        event = {"type": "realtime", "instructions": "After.", **session}
        send(ws, type="session.update", event_id="evt_gone", session=event)
        error, seen = until(ws, "error")
        assert len(seen) == 1  # no session.updated
        SERVER_EVENT.validate_python(error)
        assert error["error"]["type"] == "invalid_request_error"
        assert (error["error"]["code"], error["error"]["param"]) == ("model_not_found", param)
        assert error["error"]["event_id"] == "evt_gone"
    send(ws, type="session.update", session={"type": "realtime"})
    after = until(ws, "session.updated")[0]["session"]
    assert after["instructions"] == "Before."
    assert after["audio"]["input"]["transcription"] == before["audio"]["input"]["transcription"]
    ws.close()


def test_keywords_with_a_model_that_does_not_take_them_are_refused_live(sim: str) -> None:
    ws = connect(sim)
    bad = {"model": "gpt-4o-mini-transcribe", "keywords": ["GateFrames"]}
    send(
        ws,
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"transcription": bad}}},
    )
    error = until(ws, "error")[0]
    SERVER_EVENT.validate_python(error)
    assert error["error"]["code"] == "unsupported_parameter"
    assert error["error"]["param"] == f"{PREFIX}.keywords"
    good = {"model": "gpt-live-transcribe", "keywords": ["GateFrames"]}
    send(
        ws,
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"transcription": good}}},
    )
    applied = until(ws, "session.updated")[0]["session"]["audio"]["input"]["transcription"]
    assert applied == good
    ws.close()


def test_the_clock_takes_only_a_date(sim: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as bad:
        set_today(sim, "tomorrow")
    assert bad.value.code == 400
    assert set_today(sim, "")["fixed"] is False
