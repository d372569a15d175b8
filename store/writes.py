"""Writes to the log. Each is idempotent: rows are keyed on Twilio SIDs and inserted with
"on conflict do nothing" (or update), inside one transaction, so a redelivered task, a
duplicate webhook or a re-run after a crash finds its rows instead of adding more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import db, records
from store.models import Call, Callback, Message, Takeover, ToolCall, TranscriptLine, utcnow


def _insert(s: Session, model: type) -> Any:
    """The dialect's INSERT, which knows ``on_conflict_do_nothing`` / ``do_update``."""
    dialect = s.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def store_call(record: dict[str, Any], bot_number: str) -> tuple[int, bool]:
    """Store a call's record (transcript, tool calls, callbacks); returns (call id, whether
    the record was new). A second delivery of the same record changes nothing."""
    values = records.call_values(record, bot_number)
    with db.session() as s:
        # Inserted, or filled in over a row a summary made first (its summary is kept); a row
        # already recorded is left alone and returns nothing: this delivery is a duplicate.
        stmt = _insert(s, Call).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["call_sid"],
            set_={k: stmt.excluded[k] for k in values},
            where=Call.recorded.is_(False),
        ).returning(Call.id)
        inserted = s.execute(stmt).first()
        if inserted is None:
            existing = s.execute(select(Call.id).where(Call.call_sid == values["call_sid"]))
            return existing.scalar_one(), False
        call_id = inserted.id
        lines = [
            {
                "call_id": call_id,
                "position": n,
                "role": line.role[:16],
                "text": line.text,
                "offset_seconds": line.offset,
                "interrupted": line.interrupted,
                "note": line.note[:120],
            }
            for n, line in enumerate(records.lines_of(record))
        ]
        if lines:
            s.execute(_insert(s, TranscriptLine).values(lines).on_conflict_do_nothing())
        tools = [
            {"call_id": call_id, "position": n, **tool}
            for n, tool in enumerate(records.tool_calls_of(record))
        ]
        if tools:
            s.execute(_insert(s, ToolCall).values(tools).on_conflict_do_nothing())
        caller = values["from_number"] if values["direction"] == "inbound" else values["to_number"]
        callbacks = [
            {"call_sid": values["call_sid"], **c} for c in records.callbacks_of(record, caller)
        ]
        if callbacks:
            s.execute(_insert(s, Callback).values(callbacks).on_conflict_do_nothing())
        return call_id, True


def store_summary(call_sid: str, summary: str) -> None:
    """The after-call summary on the call's row (made here if the record is not in yet)."""
    with db.session() as s:
        stmt = _insert(s, Call).values(call_sid=call_sid, summary=summary, recorded=False)
        s.execute(
            stmt.on_conflict_do_update(index_elements=["call_sid"], set_={"summary": summary})
        )


def store_message(
    *,
    message_sid: str,
    conversation_sid: str,
    author: str,
    body: str,
    at: dt.datetime | None,
    sender: str,
    reply_to: str = "",
    staff_number: str = "",
) -> bool:
    """One text; True when it was new (False: this SID is already in the log)."""
    with db.session() as s:
        stmt = _insert(s, Message).values(
            message_sid=message_sid,
            conversation_sid=conversation_sid,
            author=author[:64],
            body=body,
            at=at or utcnow(),
            sender=sender,
            reply_to=reply_to[:80],
            staff_number=staff_number,
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["message_sid"]).returning(Message.id)
        return s.execute(stmt).first() is not None


def has_message(message_sid: str) -> bool:
    with db.session() as s:
        return (
            s.execute(select(Message.id).where(Message.message_sid == message_sid)).first()
            is not None
        )


def mark_callback_done(callback_id: int, staff_number: str) -> bool:
    """Record who called back and when; False if unknown or already done (first one wins)."""
    with db.session() as s:
        result = s.execute(
            update(Callback)
            .where(Callback.id == callback_id, Callback.done_at.is_(None))
            .values(done_at=utcnow(), done_by=staff_number)
        )
        return bool(result.rowcount)


def open_takeover(conversation_sid: str, staff_number: str) -> None:
    """Log a takeover (closing any earlier one still open on the thread)."""
    now = utcnow()
    with db.session() as s:
        _close(s, conversation_sid, staff_number, now)
        s.add(Takeover(conversation_sid=conversation_sid, taken_by=staff_number, taken_at=now))


def close_takeover(conversation_sid: str, released_by: str) -> None:
    with db.session() as s:
        _close(s, conversation_sid, released_by, utcnow())


def _close(s: Session, conversation_sid: str, released_by: str, now: dt.datetime) -> None:
    s.execute(
        update(Takeover)
        .where(Takeover.conversation_sid == conversation_sid, Takeover.released_at.is_(None))
        .values(released_at=now, released_by=released_by)
    )
