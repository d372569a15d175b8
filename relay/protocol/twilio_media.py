"""Twilio Media Streams (bidirectional ``<Connect><Stream>``): the messages the relay reads and
the ones it writes, in one place.

Twilio sends ``connected``, ``start`` (with ``streamSid``, ``callSid`` and the TwiML's
``customParameters``), ``media`` (base64 μ-law, 20 ms a frame), ``mark`` echoes, ``dtmf`` and
``stop``. The relay sends ``media``, ``mark`` and ``clear``, each naming the stream.

``media`` is the hot path (50 frames a second per call each way), so its JSON is assembled
from strings: a base64 payload may be spliced into JSON without escaping because its alphabet
needs none, and so may a stream SID once :func:`safe_sid` has accepted it. Everything spliced
is checked here first; nothing else builds these messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

#: Base64 only: what may be spliced into JSON without escaping (one C-speed regex match).
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}").fullmatch
#: Twilio SIDs are two letters and 32 hex digits; letters and digits are all a splice allows.
_SID = re.compile(r"[A-Za-z0-9]{1,64}").fullmatch
#: Mark names the relay makes (``a12``, ``s3:goodbye_played``): no character JSON escapes.
_MARK = re.compile(r"[A-Za-z0-9_:.-]{1,64}").fullmatch


def safe_sid(value: object) -> str | None:
    """``value`` when it is a SID that may be spliced into JSON, else None."""
    return value if isinstance(value, str) and _SID(value) else None


def is_base64(payload: object) -> bool:
    return isinstance(payload, str) and _BASE64(payload) is not None


# -- reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """A ``start`` message: the stream, the call it belongs to, the TwiML's parameters."""

    stream_sid: str
    call_sid: str
    params: dict[str, str]


def parse_start(msg: dict[str, Any]) -> Start | None:
    """The ``start`` message's fields, or None when it is malformed (no ``start`` object, or
    a stream SID that is not a SID)."""
    start = msg.get("start")
    if not isinstance(start, dict):
        return None
    sid = safe_sid(msg.get("streamSid") or start.get("streamSid"))
    if sid is None:
        return None
    raw = start.get("customParameters")
    params = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return Start(sid, str(start.get("callSid") or ""), params)


def media_payload(msg: dict[str, Any]) -> str | None:
    """The base64 payload of a ``media`` message, or None when it is missing or not base64
    (never spliced into JSON, never forwarded)."""
    media = msg.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    return payload if isinstance(payload, str) and _BASE64(payload) else None


def mark_name(msg: dict[str, Any]) -> str | None:
    mark = msg.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    return name if isinstance(name, str) else None


def dtmf_digit(msg: dict[str, Any]) -> str | None:
    dtmf = msg.get("dtmf")
    digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
    return digit if isinstance(digit, str) else None


# -- writing ------------------------------------------------------------------------------------
class StreamWriter:
    """Builds the messages for one stream. The SID is set once ``start`` has been read (and
    accepted by :func:`safe_sid`); before that nothing may be written to Twilio."""

    __slots__ = ("_mark_head", "_media_head", "sid")

    def __init__(self) -> None:
        self.sid = ""
        self._media_head = ""
        self._mark_head = ""

    def bind(self, sid: str) -> None:
        if safe_sid(sid) is None:
            raise ValueError("not a stream SID")
        self.sid = sid
        self._media_head = '{"event":"media","streamSid":"' + sid + '","media":{"payload":"'
        self._mark_head = '{"event":"mark","streamSid":"' + sid + '","mark":{"name":"'

    def media(self, payload_b64: str) -> str:
        """A ``media`` message; ``payload_b64`` must be base64 (OpenAI's deltas are)."""
        return self._media_head + payload_b64 + '"}}'

    def mark(self, name: str) -> str:
        if not _MARK(name):
            raise ValueError("mark names are the relay's own")
        return self._mark_head + name + '"}}'

    def clear(self) -> str:
        return orjson.dumps({"event": "clear", "streamSid": self.sid}).decode()
