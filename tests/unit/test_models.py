"""Model lifetimes and the caller-side transcription: the table follows the pinned SDK, the
check and every process warn of a coming shutdown and refuse a model already shut down."""

from __future__ import annotations

import re
import subprocess
from datetime import date, timedelta

import openai
import orjson
import pytest
from openai.types.realtime import AudioTranscription

from common import models
from common.config import ConfigError, check, load_config
from relay.browser.policy import owned_session
from relay.call.greeting import session_update
from relay.call.settings import BridgeSettings
from sandbox import services
from sandbox.realtime_sim import schema
from tests import sdk_notes
from tests.support import PYTHON, ROOT, TEST_REDIS_DB, base_env, start_service

WHISPER_GONE = date(2027, 2, 26)


# -- the table follows the pinned SDK ---------------------------------------------------------
def test_the_table_is_the_sdks_deprecation_notes() -> None:
    pin = re.search(r"^openai==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin is not None and openai.__version__ == pin.group(1)  # the notes read are the pin's
    sdk: dict[str, date] = {}
    for relative in (sdk_notes.REALTIME_NOTES, sdk_notes.TRANSCRIPTION_NOTES, sdk_notes.CHAT_NOTES):
        sdk.update(sdk_notes.shutdowns(relative))
    assert sdk == models.SHUTDOWNS
    assert models.SHUTDOWNS["gpt-realtime"] == date(2027, 1, 20)
    assert models.SHUTDOWNS["gpt-realtime-mini-2025-12-15"] == date(2027, 1, 20)
    assert models.SHUTDOWNS["gpt-audio-mini"] == date(2027, 1, 20)
    for name in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"):
        assert models.SHUTDOWNS[name] == WHISPER_GONE
    assert models.SHUTDOWNS["gpt-4o-transcribe-diarize"] == WHISPER_GONE


def test_keywords_go_only_to_the_models_the_sdk_names() -> None:
    for field in ("keywords", "languages"):
        note = sdk_notes.field_note(AudioTranscription, field)
        assert sdk_notes.models_named(note, "Supported by") == models.KEYWORD_MODELS


def test_the_defaults_have_no_announced_shutdown() -> None:
    cfg = load_config({})
    known = sdk_notes.literals(AudioTranscription.model_fields["model"].annotation)
    assert (
        cfg.openai_transcription_model == "gpt-live-transcribe" and "gpt-live-transcribe" in known
    )
    assert cfg.transcription_keywords == ("GateFrames",)
    for model in models.settings_of(cfg).values():
        assert model not in models.SHUTDOWNS
    assert models.warnings(cfg, date(2026, 12, 7)) == []


# -- the transcription a session gets ----------------------------------------------------------
def test_keywords_are_sent_only_where_the_model_takes_them() -> None:
    assert models.transcription("gpt-live-transcribe", ("GateFrames", "gate opener")) == {
        "model": "gpt-live-transcribe",
        "keywords": ["GateFrames", "gate opener"],
    }
    assert models.transcription("gpt-transcribe", ("GateFrames",))["keywords"] == ["GateFrames"]
    for model in ("whisper-1", "gpt-4o-mini-transcribe", "gpt-realtime-whisper"):
        assert models.transcription(model, ("GateFrames",)) == {"model": model}
    assert models.transcription("gpt-live-transcribe", ()) == {"model": "gpt-live-transcribe"}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("GateFrames", ("GateFrames",)),
        (" GateFrames , gate opener,, RicsList ", ("GateFrames", "gate opener", "RicsList")),
        ("none", ()),
        ("NONE", ()),
    ],
)
def test_transcription_keywords_parse(raw: str, words: tuple[str, ...]) -> None:
    assert load_config({"TRANSCRIPTION_KEYWORDS": raw}).transcription_keywords == words


def test_a_call_and_a_browser_session_name_the_configured_transcription() -> None:
    env = {"OPENAI_TRANSCRIPTION_MODEL": "gpt-transcribe", "TRANSCRIPTION_KEYWORDS": "Gate, Opener"}
    cfg = load_config(env)
    call = session_update(BridgeSettings.from_config(cfg), voicemail=False)
    wanted = {"model": "gpt-transcribe", "keywords": ["Gate", "Opener"]}
    assert call["session"]["audio"]["input"]["transcription"] == wanted
    browser = owned_session("Be brief.", "ash", models.transcription_of(cfg))
    assert browser["audio"]["input"]["transcription"] == wanted
    old = load_config({"OPENAI_TRANSCRIPTION_MODEL": "whisper-1"})
    call = session_update(BridgeSettings.from_config(old), voicemail=True)
    assert call["session"]["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    # Unconfigured settings (as some tests build them) get the same defaults as the config.
    default = session_update(BridgeSettings(model="gpt-realtime-2.1"), voicemail=False)
    assert default["session"]["audio"]["input"]["transcription"] == models.transcription_of(
        load_config({})
    )
    assert owned_session("x", "ash")["audio"]["input"]["transcription"] == (
        models.default_transcription()
    )


@pytest.mark.parametrize(
    "model", ["gpt-live-transcribe", "gpt-transcribe", "gpt-realtime-whisper", "whisper-1"]
)
def test_the_realtime_simulator_takes_the_calls_session_update(model: str) -> None:
    """Keywords go only where the model takes them, so the strict check passes for each."""
    cfg = load_config({"OPENAI_TRANSCRIPTION_MODEL": model})
    event = session_update(BridgeSettings.from_config(cfg), voicemail=False)
    assert schema.check(orjson.dumps(event), event, date(2026, 12, 7)) is None
    with_keywords = {**event["session"]["audio"]["input"]["transcription"], "keywords": ["x"]}
    event["session"]["audio"]["input"]["transcription"] = with_keywords
    refused = schema.check(orjson.dumps(event), event, date(2026, 12, 7))
    assert (refused is None) == (model in models.KEYWORD_MODELS)


# -- warn within 90 days, refuse on and after the date (injected clock) -------------------------
@pytest.mark.parametrize(
    ("today", "warned", "refused"),
    [
        (WHISPER_GONE - timedelta(days=91), False, False),
        (WHISPER_GONE - timedelta(days=90), True, False),
        (date(2026, 12, 7), True, False),
        (WHISPER_GONE - timedelta(days=1), True, False),
        (WHISPER_GONE, False, True),
        (WHISPER_GONE + timedelta(days=400), False, True),
    ],
)
def test_whisper_1_is_warned_of_then_refused(today: date, warned: bool, refused: bool) -> None:
    env = {"OPENAI_TRANSCRIPTION_MODEL": "whisper-1"}
    warnings = models.warnings(load_config(env, today=date(2026, 12, 7)), today)
    assert len(warnings) == warned
    problems = check(env, today=today)
    assert len(problems) == refused
    for message in warnings + problems:
        assert "OPENAI_TRANSCRIPTION_MODEL=whisper-1" in message and "2027-02-26" in message
    if warned:
        days = (WHISPER_GONE - today).days
        assert f"(in {days} day{'s' if days > 1 else ''})" in warnings[0]
    if refused:
        with pytest.raises(ConfigError, match="OPENAI_TRANSCRIPTION_MODEL=whisper-1"):
            load_config(env, today=today)


def test_every_checked_variable_is_named() -> None:
    env = {
        "OPENAI_REALTIME_MODEL": "gpt-realtime",
        "OPENAI_TRANSCRIPTION_MODEL": "gpt-4o-transcribe",
        "OPENAI_CHAT_MODEL": "gpt-5",
    }
    today = date(2026, 12, 7)
    warnings = models.warnings(load_config(env, today=today), today)
    assert [w.split("=")[0] for w in warnings] == list(models.MODEL_VARIABLES)
    assert "2027-01-20 (in 44 days)" in warnings[0] and "2026-12-11 (in 4 days)" in warnings[2]
    gone = check(env, today=date(2027, 1, 20))
    assert [p.split("=")[0] for p in gone] == ["OPENAI_REALTIME_MODEL", "OPENAI_CHAT_MODEL"]
    assert all("shut this model down" in p for p in gone)
    # A model without an announced shutdown is neither warned of nor refused, even years on.
    assert check({}, today=date(2040, 1, 1)) == []


# -- the real check command and real process starts (the real clock) --------------------------
def _env(**extra: str) -> dict[str, str]:
    return base_env({"REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}", **extra})


def _expect_whisper(text: str) -> None:
    """What the real clock makes of whisper-1: a warning until 2027-02-26, then a refusal."""
    assert "OPENAI_TRANSCRIPTION_MODEL=whisper-1" in text and "2027-02-26" in text, text
    if date.today() < WHISPER_GONE:
        assert "shuts down on 2027-02-26" in text


def test_the_release_check_warns_of_whisper_1() -> None:
    env = _env(OPENAI_TRANSCRIPTION_MODEL="whisper-1")
    out = subprocess.run(
        [PYTHON, "-m", "common.config", "check"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    _expect_whisper(out.stderr)
    assert out.returncode == (0 if date.today() < WHISPER_GONE else 1)
    if out.returncode == 0:
        assert "config: warning: OPENAI_TRANSCRIPTION_MODEL=whisper-1" in out.stderr
        assert out.stdout.strip() == "config: ok"


def test_the_release_check_refuses_a_model_already_shut_down() -> None:
    env = _env(OPENAI_CHAT_MODEL="o1-mini")  # shut down 2025-10-27
    out = subprocess.run(
        [PYTHON, "-m", "common.config", "check"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "OPENAI_CHAT_MODEL=o1-mini: OpenAI shut this model down on 2025-10-27" in out.stderr
    assert "config: ok" not in out.stdout


def _processes(port: int) -> list[services.Service]:
    return [services.web(port, "web"), services.relay(port, "relay"), services.worker("worker")]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["web", "relay", "worker"])
def test_every_process_warns_of_whisper_1_at_start(tmp_path, index: int) -> None:
    service = _processes(services.free_port())[index]
    proc = start_service(service, tmp_path, _env(OPENAI_TRANSCRIPTION_MODEL="whisper-1"))
    try:
        log = proc.log_text()
    finally:
        proc.stop()
    _expect_whisper(log)
    assert "model lifetime: OPENAI_TRANSCRIPTION_MODEL=whisper-1" in log
    assert log.count("model lifetime:") == 1  # once, though the worker builds the web app too


@pytest.mark.parametrize("index", [0, 1, 2], ids=["web", "relay", "worker"])
def test_no_process_starts_with_a_model_already_shut_down(tmp_path, index: int) -> None:
    service = _processes(services.free_port())[index]
    env = {**_env(OPENAI_CHAT_MODEL="o1-mini"), **service.env}
    out = subprocess.run(
        list(service.args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    said = out.stderr + out.stdout
    assert "OPENAI_CHAT_MODEL=o1-mini: OpenAI shut this model down on 2025-10-27" in said
