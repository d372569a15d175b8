"""The one place that reads the environment.

Every process (web, relay, worker, simulators, CLIs) builds a :class:`Config` with
:func:`get_config`. A bad value fails at start with a :class:`ConfigError` that names the
variable. Each field declares its parser and bounds next to it (:func:`setting`); one loop
reads them all, and :func:`_check` adds the rules that tie fields together (a model OpenAI
has shut down is refused, see :mod:`common.models`; production fails closed).

A ``.env`` file in the working directory is read in development (values already in the
environment win). Set ``GATEFRAMES_DOTENV=0`` to skip it (the test harness does, so a
developer's real secrets never leak into a test run).

``python -m common.config check`` validates the environment, names every bad variable and
warns of a configured model's coming shutdown (the release phase runs it before a deploy).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from common import models
from common.config_parsers import (
    ConfigError,
    Parser,
    aes_key,
    boolean,
    choice,
    conversation_sid,
    database_url,
    decode_key,
    e164,
    e164_list,
    hours,
    integer,
    number,
    origin,
    origins,
    rate_limit,
    text,
    url,
)
from common.staff_hours import StaffHours

__all__ = ["Config", "ConfigError", "decode_key", "get_config", "load_config"]

DEFAULT_ALLOWED_ORIGINS = (
    "https://www.gateframes.com",
    "https://gateframes.com",
    "https://www.ricslist.com",
    "https://ricslist.com",
)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


def setting(default: Any, parse: Parser = text, *, secret: bool = False) -> Any:
    """A Config field: its default, how its variable is parsed, and whether it is a secret
    (kept out of ``repr``, so a logged Config never shows it)."""
    return field(default=default, repr=not secret, metadata={"parse": parse, "secret": secret})


@dataclass(frozen=True)
class Config:
    """Typed, validated settings. Field names are the environment variable names, lowercased."""

    openai_api_key: str = setting("", secret=True)
    openai_base_url: str = setting("https://api.openai.com/v1", url("http", "https"))
    openai_realtime_url: str = setting("wss://api.openai.com/v1/realtime", url("ws", "wss"))
    openai_realtime_model: str = setting("gpt-realtime-2.1")
    openai_chat_model: str = setting("gpt-5.5")
    voice_engine: str = setting("realtime", choice("realtime", "live"))
    openai_live_url: str = setting("wss://api.openai.com/v1/live/sessions", url("ws", "wss"))
    openai_live_model: str = setting("gpt-live-1.1")
    #: The Responses model a GPT-Live call delegates to; unset = OPENAI_CHAT_MODEL.
    live_delegation_model: str = setting("")
    openai_transcription_model: str = setting(models.DEFAULT_TRANSCRIPTION_MODEL)
    transcription_keywords: tuple[str, ...] = setting(models.PRODUCT_WORDS, models.keyword_list)
    realtime_voice: str = setting("ash", choice(*VOICES))
    realtime_turn_detection: str = setting("server_vad", choice("server_vad", "semantic_vad"))
    encryption_key: bytes = setting(b"", aes_key, secret=True)
    twilio_account_sid: str = setting("")
    twilio_auth_token: str = setting("", secret=True)
    twilio_api_base_url: str = setting("", origin("http", "https"))
    twilio_validate_signatures: bool = setting(True, boolean)
    #: ``enforce`` refuses a Media Streams upgrade without a valid X-Twilio-Signature; ``log``
    #: only logs the refusal (an operator's switch, should a live call show Twilio not signing).
    twilio_stream_signature: str = setting("enforce", choice("enforce", "log"))
    public_base_url: str = setting("", url("http", "https"))
    relay_public_url: str = setting("", url("ws", "wss"))
    redis_url: str = setting("redis://localhost:6379/0", url("redis", "rediss", "unix"))
    bot_identity: str = setting("gateframes-bot")
    bot_projected_address: str = setting("+14082605145", e164)
    allowed_origins: tuple[str, ...] = setting(DEFAULT_ALLOWED_ORIGINS, origins)
    #: Defaults to true in development only (see :func:`_parse`).
    allow_localhost_origins: bool = setting(False, boolean)
    voicemail_notify_to: str = setting("", e164)
    # Staff-only commands (@call, @group) and their limits.
    staff_numbers: tuple[str, ...] = setting((), e164_list)
    command_max_numbers: int = setting(5, integer(1, 9))
    calls_per_author_per_day: int = setting(30, integer(0))
    calls_per_day: int = setting(300, integer(0))
    # Staff after a call: summaries, transfers.
    staff_notify_to: tuple[str, ...] = setting((), e164_list)
    staff_conversation_sid: str = setting("", conversation_sid)
    staff_transfer_number: str = setting("", e164)
    #: None = staff can take a transfer at any time.
    staff_hours: StaffHours | None = setting(None, hours)  # noqa: RUF009 - a field()
    staff_transfer_timeout_seconds: int = setting(20, integer(5, 600))
    # Operational knobs beyond the contract (documented in .env.example and the README).
    app_env: str = setting("production", choice("development", "production", "test"))
    log_level: str = setting("INFO", choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True))
    log_format: str = setting("json", choice("json", "text"))
    metrics_token: str = setting("", secret=True)
    http_rate_limit: str = setting("60 per minute")
    convo_rate_limit: str = setting("12 per 30 seconds")
    upgrade_rate_limit: str = setting("10 per minute")
    dedupe_seconds: int = setting(600, integer(1))
    chat_history_limit: int = setting(
        20, integer(1, 100, " (the history is read as one Twilio list page)")
    )
    chat_timeout_seconds: float = setting(30.0, number())
    twilio_timeout_seconds: float = setting(10.0, number())
    task_max_retries: int = setting(4, integer(0))
    task_retry_backoff_seconds: float = setting(2.0, number())
    #: A task run is killed after this (the soft limit, 15 s earlier, lets it retry first).
    #: The two settings below follow from it, so a crashed worker's message comes back soon:
    task_time_limit_seconds: int = setting(90, integer(2))
    #: 0 = the time limit (no run outlives its lock, so a redelivery never waits on a live run).
    task_lock_seconds: int = setting(0, integer(0))
    #: 0 = the time limit + 30 s: a message unacknowledged that long belongs to a dead worker
    #: (a live run is killed at the time limit), so another worker gets it.
    celery_visibility_timeout: int = setting(0, integer(0))
    publish_retry_seconds: float = setting(1.5, number())
    spool_dir: str = setting("var/spool")
    spool_drain_interval_seconds: float = setting(2.0, number())
    inbox_redeliver_seconds: float = setting(900.0, number())
    session_time_limit_seconds: float = setting(600.0, number())
    goodbye_fallback_seconds: float = setting(20.0, number())
    max_frame_bytes: int = setting(1 << 20, integer(1024))
    trusted_proxy_count: int = setting(0, integer(0))
    token_max_lifetime_seconds: int = setting(600, integer(1))
    # The browser relay: who owns the session, and how much one client may take.
    browser_session_policy: str = setting("owned", choice("owned", "passthrough"))
    browser_sessions_per_ip: int = setting(3, integer(1))
    browser_idle_seconds: float = setting(60.0, number(1.0))
    relay_max_sessions: int = setting(400, integer(1))
    relay_header_timeout_seconds: float = setting(10.0, number(0.5))
    # Calls that survive: upstream reconnects and relay restarts.
    upstream_reconnect_attempts: int = setting(3, integer(0, 10))
    #: How long a stopping relay waits for calls to be handed over and sessions to close;
    #: keep it below the platform's own grace (Heroku: 30 s).
    relay_drain_seconds: float = setting(20.0, number(1.0))
    # The call and text log (store/) and the staff console (/staff).
    #: Empty = a SQLite file under var/ (see :func:`store.db.database_url`).
    database_url: str = setting("", database_url, secret=True)
    log_retention_days: int = setting(90, integer(1, 3650))
    #: Signs the console's session cookies and CSRF tokens; required outside development
    #: whenever STAFF_NUMBERS is set (someone can log in).
    console_secret_key: str = setting("", secret=True)
    takeover_idle_minutes: int = setting(60, integer(1, 1440))
    #: Login codes texted per staff number, and login attempts (both steps) per client IP.
    staff_login_limit: str = setting("5 per 15 minutes", rate_limit)
    staff_login_ip_limit: str = setting("30 per hour", rate_limit)

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"

    def require(self, *names: str) -> None:
        """Fail with one message naming every missing variable a process needs."""
        missing = [n for n in names if not getattr(self, n.lower())]
        if missing:
            raise ConfigError("missing required configuration: " + ", ".join(missing))


def _is_loopback(value: str) -> bool:
    host = urlsplit(value).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(cfg: Config, today: date | None) -> list[str]:
    """Rules across fields: shut-down models and, outside development, insecure settings."""
    bad = models.refusals(cfg, today)
    if cfg.celery_visibility_timeout <= cfg.task_time_limit_seconds:
        bad.append(
            f"CELERY_VISIBILITY_TIMEOUT ({cfg.celery_visibility_timeout}) must be longer than "
            f"TASK_TIME_LIMIT_SECONDS ({cfg.task_time_limit_seconds}), or a running task is "
            "delivered to a second worker"
        )
    if cfg.voice_engine == "live":
        if not cfg.openai_api_key:
            bad.append("VOICE_ENGINE=live needs OPENAI_API_KEY (GPT-Live has no other sign-in)")
        if urlsplit(cfg.openai_live_url).query:
            bad.append("OPENAI_LIVE_URL must have no query string (GPT-Live refuses one)")
    if cfg.is_development:
        return bad
    if cfg.staff_numbers and len(cfg.console_secret_key) < 32:
        bad.append(
            "CONSOLE_SECRET_KEY must be set (32 characters or more) outside development when "
            "STAFF_NUMBERS is set: it signs the staff console's sessions"
        )
    if not cfg.twilio_validate_signatures:
        bad.append(
            "TWILIO_VALIDATE_SIGNATURES=false is only allowed with APP_ENV=development "
            "(anyone could forge Twilio webhooks)"
        )
    urls = (
        ("OPENAI_BASE_URL", "https"),
        ("OPENAI_REALTIME_URL", "wss"),
        ("OPENAI_LIVE_URL", "wss"),
    )
    for name, secure in urls:
        value = getattr(cfg, name.lower())
        if urlsplit(value).scheme != secure and not _is_loopback(value):
            bad.append(
                f"{name} must be a {secure}:// URL outside development (the API key travels "
                f"on it), got {value!r}"
            )
    return bad


def _parse(env: Mapping[str, str], errors: list[str] | None, today: date | None) -> Config:
    """Read every field from ``env``; collect problems into ``errors`` or raise the first."""
    problems: list[str] = []
    kw: dict[str, Any] = {}
    for f in fields(Config):
        raw = env.get(f.name.upper())
        if raw is None or raw == "":
            continue
        try:
            kw[f.name] = f.metadata["parse"](f.name.upper(), raw)
        except ConfigError as exc:
            problems.append(str(exc))
    app_env = kw.get("app_env", Config.app_env)
    kw.setdefault("allow_localhost_origins", app_env == "development")
    limit = kw.get("task_time_limit_seconds", Config.task_time_limit_seconds)
    kw["task_lock_seconds"] = kw.get("task_lock_seconds") or limit
    kw["celery_visibility_timeout"] = kw.get("celery_visibility_timeout") or limit + 30
    if not problems:
        cfg = Config(**kw)
        problems.extend(_check(cfg, today))
    if errors is not None:
        errors.extend(problems)
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else "; ".join(problems))
    return cfg


def _environment() -> Mapping[str, str]:
    """The process environment, after ``.env`` (unless GATEFRAMES_DOTENV=0)."""
    if os.environ.get("GATEFRAMES_DOTENV", "1") != "0":
        from dotenv import load_dotenv

        load_dotenv(os.environ.get("GATEFRAMES_ENV_FILE", ".env"), override=False)
    return os.environ


def load_config(env: Mapping[str, str] | None = None, today: date | None = None) -> Config:
    """Build a Config from ``env`` (default: the process environment plus ``.env``)."""
    return _parse(_environment() if env is None else env, None, today)


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


def check(env: Mapping[str, str] | None = None, today: date | None = None) -> list[str]:
    """Every problem with the configuration (empty when it is good)."""
    problems: list[str] = []
    with contextlib.suppress(ConfigError):  # the problems are in the list
        _parse(_environment() if env is None else env, problems, today)
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["check"]:
        print("usage: python -m common.config check", file=sys.stderr)
        return 2
    problems = check()
    for problem in problems:
        print(f"config: {problem}", file=sys.stderr)
    if not problems:
        for warning in models.warnings(get_config()):
            print(f"config: warning: {warning}", file=sys.stderr)
        print("config: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
