"""Configuration parsing: defaults, and errors that name the bad variable."""

from __future__ import annotations

import base64

import pytest

from common.config import ConfigError, load_config


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
