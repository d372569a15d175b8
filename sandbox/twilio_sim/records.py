"""Small helpers for simulator records: SIDs, Twilio's two date formats, JSON attributes."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import secrets
from typing import Any

from sandbox.twilio_sim.errors import TwilioError


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822_now() -> str:
    """Api 2010 dates: ``Tue, 31 Aug 2010 20:36:28 +0000``."""
    return email.utils.format_datetime(dt.datetime.now(dt.UTC).replace(microsecond=0))


def parse_iso(value: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise TwilioError(400, 20001, f"Invalid DateCreated: {value}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def json_attr(value: Any) -> str:
    """Twilio stores ``Attributes`` as a JSON string and rejects invalid JSON. (Objects come
    from the JSON ``Participant`` specs of ConversationWithParticipants.)"""
    if value is None or value == "":
        return "{}"
    if not isinstance(value, str):
        return json.dumps(value)
    try:
        json.loads(value)
    except ValueError as exc:
        raise TwilioError(400, 50304, "Attributes not valid JSON") from exc
    return value


def conversation_state(value: str) -> str:
    if value not in ("initializing", "inactive", "active", "closed"):
        raise TwilioError(400, 20001, f"Invalid State: {value}")
    return value
