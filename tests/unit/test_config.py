"""Configuration parsing: defaults, and errors that name the bad variable."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from common.config import ConfigError, load_config
from tests.support import base_env


def test_defaults() -> None:
    cfg = load_config({})
    assert cfg.redis_url == "redis://localhost:6379/0"
    assert cfg.bot_identity == "gateframes-bot"
    assert cfg.bot_projected_address == "+14082605145"
    assert cfg.realtime_voice == "ash"
    assert "https://gateframes.com" in cfg.allowed_origins
    assert cfg.twilio_validate_signatures is True


@pytest.mark.parametrize(
    "env, name",
    [
        ({"ENCRYPTION_KEY": "not base64!"}, "ENCRYPTION_KEY"),
        ({"ENCRYPTION_KEY": base64.b64encode(b"x" * 10).decode()}, "ENCRYPTION_KEY"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"PUBLIC_BASE_URL": "example.com"}, "PUBLIC_BASE_URL"),
        ({"RELAY_PUBLIC_URL": "https://relay.example.com"}, "RELAY_PUBLIC_URL"),
        ({"TWILIO_VALIDATE_SIGNATURES": "maybe"}, "TWILIO_VALIDATE_SIGNATURES"),
        ({"REALTIME_VOICE": "robot"}, "REALTIME_VOICE"),
        ({"BOT_PROJECTED_ADDRESS": "4082605145"}, "BOT_PROJECTED_ADDRESS"),
        ({"ALLOWED_ORIGINS": "https://a.example/path"}, "ALLOWED_ORIGINS"),
        ({"TASK_MAX_RETRIES": "many"}, "TASK_MAX_RETRIES"),
        # the history is one Twilio list page: PageSize above 100 is refused by Twilio
        ({"CHAT_HISTORY_LIMIT": "101"}, "CHAT_HISTORY_LIMIT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config(env)


def test_key_sizes() -> None:
    for size in (16, 24, 32):
        cfg = load_config({"ENCRYPTION_KEY": base64.b64encode(b"k" * size).decode()})
        assert len(cfg.encryption_key) == size


def test_require_lists_missing() -> None:
    cfg = load_config({"OPENAI_API_KEY": "sk-x"})
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"):
        cfg.require("OPENAI_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")


def test_secrets_not_in_repr() -> None:
    cfg = load_config(
        {"TWILIO_AUTH_TOKEN": "supersecret", "ENCRYPTION_KEY": base64.b64encode(b"k" * 16).decode()}
    )
    assert "supersecret" not in repr(cfg)
    assert "a2tr" not in repr(cfg)


def test_chat_history_limit_fits_one_twilio_page() -> None:
    assert load_config({"CHAT_HISTORY_LIMIT": "100"}).chat_history_limit == 100


# -- production fails closed ------------------------------------------------------------------
def test_signature_checks_cannot_be_switched_off_in_production() -> None:
    for env in ("production", "test"):
        with pytest.raises(ConfigError, match="TWILIO_VALIDATE_SIGNATURES"):
            load_config({"APP_ENV": env, "TWILIO_VALIDATE_SIGNATURES": "false"})
    cfg = load_config({"APP_ENV": "development", "TWILIO_VALIDATE_SIGNATURES": "false"})
    assert cfg.twilio_validate_signatures is False


def test_localhost_origins_default_on_only_in_development() -> None:
    assert load_config({"APP_ENV": "development"}).allow_localhost_origins is True
    assert load_config({}).allow_localhost_origins is False
    assert load_config({"APP_ENV": "test"}).allow_localhost_origins is False
    explicit = load_config({"ALLOW_LOCALHOST_ORIGINS": "true"})
    assert explicit.allow_localhost_origins is True


@pytest.mark.parametrize(
    "name, value",
    [
        ("OPENAI_BASE_URL", "http://api.openai.com/v1"),
        ("OPENAI_REALTIME_URL", "ws://api.openai.com/v1/realtime"),
        ("OPENAI_BASE_URL", "http://10.0.0.5:8080/v1"),
    ],
)
def test_openai_urls_must_be_encrypted_outside_development(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})
    assert load_config({"APP_ENV": "development", name: value})


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:5301/v1", "http://localhost:5301/v1", "http://[::1]:5301/v1"]
)
def test_loopback_simulators_are_allowed_plain(value: str) -> None:
    assert load_config({"OPENAI_BASE_URL": value}).openai_base_url == value


def test_check_names_every_bad_variable(tmp_path) -> None:
    env = {
        "GATEFRAMES_DOTENV": "0",
        "APP_ENV": "production",
        "REDIS_URL": "nope",
        "STAFF_NUMBERS": "+14155550100,4155550101",
        "CHAT_HISTORY_LIMIT": "500",
    }
    out = subprocess.run(
        [sys.executable, "-m", "common.config", "check"],
        env={**base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    for name in ("REDIS_URL", "STAFF_NUMBERS", "CHAT_HISTORY_LIMIT"):
        assert name in out.stderr
    good = subprocess.run(
        [sys.executable, "-m", "common.config", "check"],
        env={**base_env(), "GATEFRAMES_DOTENV": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (good.returncode, good.stdout.strip()) == (0, "config: ok")


@pytest.mark.parametrize("module", ["webhooks", "relay"])
def test_production_start_with_signatures_off_is_refused(module: str) -> None:
    """The attack: an operator (or a leaked .env) turns signature checks off in production.
    Neither the web process nor the relay starts."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--port", "0"],
        env={**base_env(), "APP_ENV": "production", "TWILIO_VALIDATE_SIGNATURES": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "TWILIO_VALIDATE_SIGNATURES" in out.stderr and "development" in out.stderr


def test_crash_timings_follow_the_task_time_limit() -> None:
    cfg = load_config({})
    assert cfg.task_time_limit_seconds == 90
    assert cfg.task_lock_seconds == 90
    assert cfg.celery_visibility_timeout == 120  # a killed worker's message: back in ~2 min
    shorter = load_config({"TASK_TIME_LIMIT_SECONDS": "40"})
    assert (shorter.task_lock_seconds, shorter.celery_visibility_timeout) == (40, 70)
    with pytest.raises(ConfigError, match="CELERY_VISIBILITY_TIMEOUT"):
        load_config({"CELERY_VISIBILITY_TIMEOUT": "60"})  # a live run would be redelivered


def test_a_live_engine_that_cannot_work_is_refused() -> None:
    """VOICE_ENGINE=live needs the key and a URL GPT-Live accepts; realtime does not care."""
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_config({"VOICE_ENGINE": "live"})
    with pytest.raises(ConfigError, match="OPENAI_LIVE_URL"):
        load_config(
            {
                "VOICE_ENGINE": "live",
                "OPENAI_API_KEY": "k",
                "OPENAI_LIVE_URL": "wss://x/v1/live/sessions?model=m",
            }
        )
    with pytest.raises(ConfigError, match="OPENAI_LIVE_URL"):
        load_config(
            {
                "VOICE_ENGINE": "live",
                "OPENAI_API_KEY": "k",
                "OPENAI_LIVE_URL": "ws://api.openai.com/v1/live/sessions",
            }
        )
    with pytest.raises(ConfigError, match="VOICE_ENGINE"):
        load_config({"VOICE_ENGINE": "gemini"})
    cfg = load_config({"VOICE_ENGINE": "live", "OPENAI_API_KEY": "k"})
    assert (cfg.voice_engine, cfg.openai_live_model) == ("live", "gpt-live-1.1")
    assert load_config({}).voice_engine == "realtime"
