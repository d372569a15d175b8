"""Redis keys a call's tools share between the relay and the web process.

- ``gf:transfer:<CallSid>`` (string, JSON ``{"caller", "reason"}``, :data:`TRANSFER_TTL_SECONDS`):
  written by the relay just before it redirects the call to staff, read by
  ``/twilio/voice/transfer`` and ``/twilio/voice/whisper``. The reason is what the caller
  said; it stays out of URLs (Twilio keeps request URLs in its logs) and out of the caller's
  TwiML (only staff hear it).
- ``gf:call_notes:<CallSid>`` (list of JSON objects, oldest first, :data:`NOTES_TTL_SECONDS`):
  what happened during the call beyond the transcript, for the call summary. Each entry has
  ``kind`` and ``at`` (ISO 8601 UTC) and, by kind:
  ``message`` (``name``, ``callback_number``, ``message``: take_message),
  ``transfer`` (``status``: Twilio's ``DialCallStatus``),
  ``recording`` (``url``, ``duration``, ``recording_sid``: a voicemail after a missed transfer).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis

from common.redis_util import key

TRANSFER_TTL_SECONDS = 600
#: Long enough for the summary to be built after the call, short enough not to pile up.
NOTES_TTL_SECONDS = 86_400
#: A call cannot grow its notes without bound (each tool call adds at most one).
MAX_NOTES = 50


def transfer_key(call_sid: str) -> str:
    return key("transfer", call_sid)


def notes_key(call_sid: str) -> str:
    return key("call_notes", call_sid)


def save_transfer(client: redis.Redis, call_sid: str, caller: str, reason: str) -> None:
    value = json.dumps({"caller": caller, "reason": reason})
    client.set(transfer_key(call_sid), value, ex=TRANSFER_TTL_SECONDS)


def load_transfer(client: redis.Redis, call_sid: str) -> dict[str, str]:
    """``{"caller", "reason"}`` (empty strings when unknown or unreadable)."""
    raw = client.get(transfer_key(call_sid))
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    return {k: str(data.get(k) or "") for k in ("caller", "reason")}


def add_note(client: redis.Redis, call_sid: str, kind: str, **fields: Any) -> None:
    entry = {"kind": kind, "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    entry.update(fields)
    name = notes_key(call_sid)
    pipe = client.pipeline()
    pipe.rpush(name, json.dumps(entry))
    pipe.ltrim(name, -MAX_NOTES, -1)
    pipe.expire(name, NOTES_TTL_SECONDS)
    pipe.execute()


def read_notes(client: redis.Redis, call_sid: str) -> list[dict[str, Any]]:
    out = []
    for raw in client.lrange(notes_key(call_sid), 0, -1):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out
