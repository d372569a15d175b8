"""What the console shows, as plain data: the JSON routes return it and the pages render it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, render_template

from common import takeover
from common.config import Config
from common.redis_util import get_redis
from store import db, reads
from store.models import Call, Callback, Message
from store.reads import Thread

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
CONVERSATION_SID = re.compile(r"^CH[0-9a-fA-F]{32}$")


def cfg() -> Config:
    return current_app.extensions["gateframes_config"]


def require_log() -> None:
    """503 with the reason when the log cannot be read (schema not migrated, database down)."""
    if not db.ready():
        try:
            problem = db.schema().problem()
        except Exception as exc:
            problem = f"the database is unreachable ({type(exc).__name__})"
        page = render_template("staff/error.html", title="Call log unavailable", message=problem)
        abort(current_app.response_class(page, status=503, mimetype="text/html"))


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def safe_link(url: str) -> str | None:
    """A link only to http(s) (a recording URL is data from outside: never ``javascript:``)."""
    return url if urlsplit(url).scheme in ("http", "https") else None


def call_row(c: Call) -> dict[str, Any]:
    return {
        "call_sid": c.call_sid,
        "from": c.from_number,
        "to": c.to_number,
        "direction": c.direction,
        "started_at": iso(c.started_at),
        "duration_seconds": None if c.duration_seconds is None else round(c.duration_seconds, 1),
        "outcome": c.outcome,
        "voicemail": c.voicemail,
    }


def call_json(c: Call) -> dict[str, Any]:
    return {
        **call_row(c),
        "ended_at": iso(c.ended_at),
        "summary": c.summary,
        "transcript": [
            {
                "role": line.role,
                "text": line.text,
                "offset": line.offset_seconds,
                "interrupted": line.interrupted,
                "note": line.note,
            }
            for line in c.lines
        ],
        "tool_calls": [
            {"name": t.name, "arguments": t.arguments, "result": t.result} for t in c.tool_calls
        ],
        "notes": {
            "messages_taken": c.messages_taken or [],
            "transfer": {"to": c.transfer_to, "status": c.transfer_status}
            if c.transfer_to or c.transfer_status
            else None,
            "recording_url": c.recording_url or None,
        },
    }


def author_label(m: Message) -> str:
    """Who wrote a line, as staff read it."""
    if m.sender == "staff":
        return f"Staff {m.staff_number}".strip()
    if m.sender == "assistant":
        return "Assistant"
    return m.author or "Customer"


def message_json(m: Message) -> dict[str, Any]:
    by = m.staff_number if m.sender == "staff" else m.sender
    return {
        "sid": m.message_sid,
        "author": m.author,
        "body": m.body,
        "at": iso(m.at),
        "by": by,
        "label": author_label(m),
    }


def thread_json(t: Thread) -> dict[str, Any]:
    return {
        "conversation_sid": t.conversation_sid,
        "customer": t.customer,
        "last_at": iso(t.last_at),
        "last_body": t.last_body,
        "last_by": t.last_sender,
        "messages": t.count,
        "taken_over": held(t.conversation_sid) is not None,
    }


def held(conversation_sid: str) -> dict[str, Any] | None:
    return takeover.holder(get_redis(), conversation_sid)


def conversation_json(conversation_sid: str) -> dict[str, Any]:
    holder = held(conversation_sid)
    return {
        "conversation_sid": conversation_sid,
        "taken_over": holder is not None,
        "taken_by": (holder or {}).get("by"),
        "taken_at": (holder or {}).get("at"),
        "messages": [message_json(m) for m in reads.messages(conversation_sid)],
    }


def callback_json(c: Callback) -> dict[str, Any]:
    return {
        "id": c.id,
        "call_sid": c.call_sid,
        "kind": c.kind,
        "number": c.number,
        "name": c.name,
        "detail": c.detail,
        "created_at": iso(c.created_at),
        "done_at": iso(c.done_at),
        "done_by": c.done_by,
    }


def call_or_404(call_sid: str) -> Call:
    if not CALL_SID.match(call_sid):
        abort(404)
    found = reads.call(call_sid)
    if found is None or not found.recorded:
        abort(404)
    return found


def conversation_or_404(conversation_sid: str) -> str:
    if not CONVERSATION_SID.match(conversation_sid):
        abort(404)
    return conversation_sid
