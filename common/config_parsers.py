"""Parsers of configuration values: ``(variable name, raw text) -> value``, or a
:class:`ConfigError` naming the variable. :mod:`common.config` declares which parser each
variable uses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from common import staff_hours
from common.staff_hours import StaffHours


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


Parser = Callable[[str, str], Any]


# -- parsers: (variable name, raw text) -> value, or ConfigError naming the variable ----------
def text(name: str, raw: str) -> str:
    return raw.strip()


def boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def integer(minimum: int = 0, maximum: int | None = None, why: str = "") -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be <= {maximum}{why}, got {value}")
        return value

    return parse


def number(minimum: float = 0.0) -> Parser:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def choice(*allowed: str, upper: bool = False) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def url(*schemes: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ConfigError(f"{name} must be an absolute {'/'.join(schemes)} URL, got {raw!r}")
        return value

    return parse


def origin(*schemes: str) -> Parser:
    as_url = url(*schemes)

    def parse(name: str, raw: str) -> str:
        value = as_url(name, raw)
        parts = urlsplit(value)
        if parts.path or parts.query or parts.fragment:
            raise ConfigError(f"{name} must be an origin without path or query, got {raw!r}")
        return value

    return parse


def origins(name: str, raw: str) -> tuple[str, ...]:
    one = origin("http", "https")
    return tuple(one(name, o) for o in raw.split(",") if o.strip())


def e164(name: str, raw: str) -> str:
    value = raw.strip()
    if not (value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16):
        raise ConfigError(f"{name} must be an E.164 number like +14155550000, got {raw!r}")
    return value


def e164_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(e164(name, n) for n in raw.split(",") if n.strip())


def decode_key(raw: str, name: str = "ENCRYPTION_KEY") -> bytes:
    """Decode a standard-base64 AES key and insist on 16, 24 or 32 bytes.

    64 hex characters (what a PaaS secret generator such as app.json's ``"generator":
    "secret"`` makes) are read as the 32 key bytes: as base64 they would be 48 bytes, which
    is no AES key, so the two forms cannot be confused."""
    text_value = raw.strip()
    if len(text_value) == 64 and all(c in "0123456789abcdefABCDEF" for c in text_value):
        return bytes.fromhex(text_value)
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid standard base64") from None
    if len(key) not in (16, 24, 32):
        raise ConfigError(f"{name} must decode to 16, 24 or 32 bytes, got {len(key)}")
    return key


def aes_key(name: str, raw: str) -> bytes:
    return decode_key(raw, name)


def conversation_sid(name: str, raw: str) -> str:
    value = raw.strip()
    if not (value.startswith("CH") and len(value) == 34 and value[2:].isalnum()):
        raise ConfigError(f"{name} must be a Conversation SID (CH + 32 characters), got {raw!r}")
    return value


def hours(name: str, raw: str) -> StaffHours:
    try:
        return staff_hours.parse(raw)
    except staff_hours.StaffHoursError as exc:
        raise ConfigError(f"{name}: {exc}, got {raw!r}") from None


def database_url(name: str, raw: str) -> str:
    """A SQLAlchemy URL for PostgreSQL or SQLite. The PaaS add-on's ``postgres://`` (and a plain
    ``postgresql://``) become ``postgresql+psycopg://``, the driver installed here."""
    value = raw.strip()
    scheme, sep, rest = value.partition("://")
    if not sep or not rest:
        raise ConfigError(f"{name} must be a postgres:// or sqlite:/// URL (no scheme given)")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return "postgresql+psycopg://" + rest
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return value
    raise ConfigError(
        f"{name} must be postgres://…, postgresql://… or sqlite:///path, got scheme {scheme!r}"
    )


def rate_limit(name: str, raw: str) -> str:
    """A limit such as ``5 per 15 minutes`` (the syntax of the ``limits`` library)."""
    from limits import parse

    value = raw.strip()
    try:
        parse(value)
    except ValueError:
        raise ConfigError(f"{name} must be a limit like '5 per 15 minutes', got {raw!r}") from None
    return value
