"""How long the log keeps things: LOG_RETENTION_DAYS, and one number's erasure on request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from store import db
from store.models import Call, Callback, Message, Takeover, ToolCall, TranscriptLine, utcnow


@dataclass(frozen=True)
class Removed:
    calls: int
    texts: int

    def __str__(self) -> str:
        return f"{self.calls} call(s) and {self.texts} text(s)"


def _delete_calls(s: Session, where: ColumnElement[bool]) -> int:
    """Delete the calls matching ``where`` and everything hanging off them (explicitly, so it
    does not depend on the database enforcing ON DELETE CASCADE)."""
    ids = select(Call.id).where(where)
    sids = select(Call.call_sid).where(where)
    s.execute(delete(TranscriptLine).where(TranscriptLine.call_id.in_(ids)))
    s.execute(delete(ToolCall).where(ToolCall.call_id.in_(ids)))
    s.execute(delete(Callback).where(Callback.call_sid.in_(sids)))
    return s.execute(delete(Call).where(where)).rowcount or 0


def purge(days: int, now: dt.datetime | None = None) -> Removed:
    """Delete calls and texts older than ``days`` days (and takeovers of that age)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    with db.session() as s:
        calls = _delete_calls(s, func.coalesce(Call.started_at, Call.created_at) < cutoff)
        texts = s.execute(delete(Message).where(Message.at < cutoff)).rowcount or 0
        s.execute(delete(Takeover).where(Takeover.taken_at < cutoff))
    return Removed(calls, texts)


def erase(number: str) -> Removed:
    """Delete every call from or to ``number`` and every text in a conversation where that
    number wrote (the whole thread: the replies quote and answer that person)."""
    with db.session() as s:
        calls = _delete_calls(s, or_(Call.from_number == number, Call.to_number == number))
        threads = select(Message.conversation_sid).where(Message.author == number).distinct()
        sids = list(s.scalars(threads))
        texts = 0
        if sids:
            texts = (
                s.execute(delete(Message).where(Message.conversation_sid.in_(sids))).rowcount or 0
            )
            s.execute(delete(Takeover).where(Takeover.conversation_sid.in_(sids)))
    return Removed(calls, texts)
