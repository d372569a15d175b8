"""The one place that reads the environment.

Every process (web, relay, worker, simulators, CLIs) builds a :class:`Config` with
:func:`get_config`. A bad value fails at start with a :class:`ConfigError` that names the
variable, so an operator never debugs a half-configured service at 3 a.m.

A ``.env`` file in the working directory is read in development (values already in the
environment win). Set ``GATEFRAMES_DOTENV=0`` to skip it (the test harness does, so a
developer's real secrets never leak into a test run).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

DEFAULT_ALLOWED_ORIGINS = (
    "https://www.gateframes.com",
    "https://gateframes.com",
    "https://www.ricslist.com",
    "https://ricslist.com",
)


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute {'/'.join(schemes)} URL, got {raw!r}")
    return value


def _origin(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    value = _url(name, raw, schemes)
    parts = urlsplit(value)
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an origin without path or query, got {raw!r}")
    return value


def decode_key(raw: str, name: str = "ENCRYPTION_KEY") -> bytes:
    """Decode a standard-base64 AES key and insist on 16, 24 or 32 bytes."""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid standard base64") from None
    if len(key) not in (16, 24, 32):
        raise ConfigError(f"{name} must decode to 16, 24 or 32 bytes, got {len(key)}")
    return key


SECRET_NAMES = ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "ENCRYPTION_KEY")


@dataclass(frozen=True)
class Config:
    """Typed, validated settings. Field names are the environment variable names, lowercased."""

    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    openai_realtime_url: str = "wss://api.openai.com/v1/realtime"
    openai_realtime_model: str = "gpt-realtime-2.1"
    openai_chat_model: str = "gpt-5.5"
    realtime_voice: str = "ash"
    realtime_turn_detection: str = "server_vad"
    encryption_key: bytes = field(default=b"", repr=False)
    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_api_base_url: str = ""
    twilio_validate_signatures: bool = True
    public_base_url: str = ""
    relay_public_url: str = ""
    redis_url: str = "redis://localhost:6379/0"
    bot_identity: str = "gateframes-bot"
    bot_projected_address: str = "+14082605145"
    allowed_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    allow_localhost_origins: bool = True
    voicemail_notify_to: str = ""
    # Operational knobs beyond the contract (documented in .env.example and the README).
    app_env: str = "production"
    log_level: str = "INFO"
    log_format: str = "json"
    http_rate_limit: str = "60 per minute"
    convo_rate_limit: str = "12 per 30 seconds"
    upgrade_rate_limit: str = "10 per minute"
    dedupe_seconds: int = 600
    chat_history_limit: int = 20
    chat_timeout_seconds: float = 30.0
    twilio_timeout_seconds: float = 10.0
    task_max_retries: int = 4
    task_retry_backoff_seconds: float = 2.0
    task_lock_seconds: int = 180
    celery_visibility_timeout: int = 600
    publish_retry_seconds: float = 1.5
    spool_dir: str = "var/spool"
    spool_drain_interval_seconds: float = 2.0
    inbox_redeliver_seconds: float = 900.0
    session_time_limit_seconds: float = 600.0
    goodbye_fallback_seconds: float = 20.0
    max_frame_bytes: int = 1 << 20
    trusted_proxy_count: int = 0

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"

    @property
    def validating_signatures(self) -> bool:
        return self.twilio_validate_signatures

    def require(self, *names: str) -> None:
        """Fail with one message naming every missing variable a process needs."""
        missing = [n for n in names if not getattr(self, n.lower())]
        if missing:
            raise ConfigError("missing required configuration: " + ", ".join(missing))


def _parse(env: Mapping[str, str]) -> Config:
    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    kw: dict[str, object] = {}
    strings = (
        "OPENAI_API_KEY",
        "OPENAI_REALTIME_MODEL",
        "OPENAI_CHAT_MODEL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "BOT_IDENTITY",
        "HTTP_RATE_LIMIT",
        "CONVO_RATE_LIMIT",
        "UPGRADE_RATE_LIMIT",
        "SPOOL_DIR",
    )
    for name in strings:
        if (v := get(name)) is not None:
            kw[name.lower()] = v.strip()

    if (v := get("OPENAI_BASE_URL")) is not None:
        kw["openai_base_url"] = _url("OPENAI_BASE_URL", v, ("http", "https"))
    if (v := get("OPENAI_REALTIME_URL")) is not None:
        kw["openai_realtime_url"] = _url("OPENAI_REALTIME_URL", v, ("ws", "wss"))
    if (v := get("TWILIO_API_BASE_URL")) is not None:
        kw["twilio_api_base_url"] = _origin("TWILIO_API_BASE_URL", v, ("http", "https"))
    if (v := get("PUBLIC_BASE_URL")) is not None:
        kw["public_base_url"] = _url("PUBLIC_BASE_URL", v, ("http", "https"))
    if (v := get("RELAY_PUBLIC_URL")) is not None:
        kw["relay_public_url"] = _url("RELAY_PUBLIC_URL", v, ("ws", "wss"))
    if (v := get("REDIS_URL")) is not None:
        kw["redis_url"] = _url("REDIS_URL", v, ("redis", "rediss", "unix"))
    if (v := get("ENCRYPTION_KEY")) is not None:
        kw["encryption_key"] = decode_key(v)

    voices = {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
    if (v := get("REALTIME_VOICE")) is not None:
        if v.strip() not in voices:
            raise ConfigError(
                f"REALTIME_VOICE must be one of {', '.join(sorted(voices))}, got {v!r}"
            )
        kw["realtime_voice"] = v.strip()
    if (v := get("REALTIME_TURN_DETECTION")) is not None:
        if v.strip() not in ("server_vad", "semantic_vad"):
            raise ConfigError(
                f"REALTIME_TURN_DETECTION must be server_vad or semantic_vad, got {v!r}"
            )
        kw["realtime_turn_detection"] = v.strip()

    for name in ("BOT_PROJECTED_ADDRESS", "VOICEMAIL_NOTIFY_TO"):
        if (v := get(name)) is not None:
            number = v.strip()
            if not (number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16):
                raise ConfigError(f"{name} must be an E.164 number like +14155550000, got {v!r}")
            kw[name.lower()] = number

    if (v := get("ALLOWED_ORIGINS")) is not None:
        origins = tuple(
            _origin("ALLOWED_ORIGINS", o, ("http", "https")) for o in v.split(",") if o.strip()
        )
        kw["allowed_origins"] = origins
    for name in ("TWILIO_VALIDATE_SIGNATURES", "ALLOW_LOCALHOST_ORIGINS"):
        if (v := get(name)) is not None:
            kw[name.lower()] = _bool(name, v)

    if (v := get("APP_ENV")) is not None:
        if v.strip() not in ("development", "production", "test"):
            raise ConfigError(f"APP_ENV must be development, production or test, got {v!r}")
        kw["app_env"] = v.strip()
    if (v := get("LOG_LEVEL")) is not None:
        if v.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {v!r}")
        kw["log_level"] = v.strip().upper()
    if (v := get("LOG_FORMAT")) is not None:
        if v.strip() not in ("json", "text"):
            raise ConfigError(f"LOG_FORMAT must be json or text, got {v!r}")
        kw["log_format"] = v.strip()

    ints = {
        "DEDUPE_SECONDS": 1,
        "CHAT_HISTORY_LIMIT": 1,
        "TASK_MAX_RETRIES": 0,
        "TASK_LOCK_SECONDS": 1,
        "CELERY_VISIBILITY_TIMEOUT": 1,
        "MAX_FRAME_BYTES": 1024,
        "TRUSTED_PROXY_COUNT": 0,
    }
    #: Upper bounds: the history is read in one Twilio list page, whose PageSize is at most 100.
    maxima = {"CHAT_HISTORY_LIMIT": 100}
    for name, minimum in ints.items():
        if (v := get(name)) is not None:
            kw[name.lower()] = _int(name, v, minimum, maxima.get(name))
    floats = (
        "CHAT_TIMEOUT_SECONDS",
        "TWILIO_TIMEOUT_SECONDS",
        "TASK_RETRY_BACKOFF_SECONDS",
        "PUBLISH_RETRY_SECONDS",
        "SPOOL_DRAIN_INTERVAL_SECONDS",
        "INBOX_REDELIVER_SECONDS",
        "SESSION_TIME_LIMIT_SECONDS",
        "GOODBYE_FALLBACK_SECONDS",
    )
    for name in floats:
        if (v := get(name)) is not None:
            kw[name.lower()] = _float(name, v)
    return Config(**kw)  # type: ignore[arg-type]


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from ``env`` (default: the process environment plus ``.env``)."""
    if env is None:
        if os.environ.get("GATEFRAMES_DOTENV", "1") != "0":
            from dotenv import load_dotenv

            load_dotenv(os.environ.get("GATEFRAMES_ENV_FILE", ".env"), override=False)
        env = os.environ
    return _parse(env)


@functools.cache
def get_config() -> Config:
    """The process-wide Config, read once."""
    return load_config()


def process_environment() -> dict[str, str]:
    """A copy of the environment (after ``.env``), for launchers that start child processes."""
    get_config()
    return dict(os.environ)


def config_names() -> list[str]:
    """Every variable this module understands (for docs and .env.example checks)."""
    return [f.name.upper() for f in fields(Config)]
