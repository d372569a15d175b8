"""What the staff console reads: today's calls and texts, callbacks, one call, one thread,
search by number or words, and a date range for CSV export."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from store import db
from store.models import Call, Callback, Message, Takeover, TranscriptLine

_NUMBERISH = re.compile(r"^[\d\s()+.\-]+$")
MAX_LIMIT = 200


@dataclass(frozen=True)
class Thread:
    """A conversation as listed: its newest text and who the customer is."""

    conversation_sid: str
    customer: str
    last_at: dt.datetime
    last_body: str
    last_sender: str
    count: int


def number_digits(q: str) -> str | None:
    """The digits of ``q`` when it reads as (part of) a phone number, else None."""
    digits = re.sub(r"\D", "", q)
    return digits if _NUMBERISH.match(q.strip()) and len(digits) >= 3 else None


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _limit(limit: int | None, default: int = 50) -> int:
    return max(1, min(MAX_LIMIT, limit or default))


def start_of_day(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _calls_matching(q: str) -> Select:
    stmt = select(Call).where(Call.recorded.is_(True))
    q = q.strip()
    if not q:
        return stmt
    digits = number_digits(q)
    if digits:
        pattern = f"%{digits}%"
        return stmt.where(or_(Call.from_number.like(pattern), Call.to_number.like(pattern)))
    pattern = _like(q)
    said = select(TranscriptLine.call_id).where(TranscriptLine.text.ilike(pattern, escape="\\"))
    return stmt.where(
        or_(
            Call.id.in_(said),
            Call.summary.ilike(pattern, escape="\\"),
            Call.call_sid == q,
        )
    )


def calls(q: str = "", limit: int | None = None, since: dt.datetime | None = None) -> list[Call]:
    """Calls matching ``q`` (a number, words said or summarised, or a CallSid), newest first."""
    stmt = _calls_matching(q)
    if since is not None:
        stmt = stmt.where(Call.started_at >= since)
    stmt = stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(_limit(limit))
    with db.session() as s:
        return list(s.scalars(stmt))


def call(call_sid: str) -> Call | None:
    """One call with its transcript and tool calls loaded."""
    stmt = (
        select(Call)
        .where(Call.call_sid == call_sid)
        .options(selectinload(Call.lines), selectinload(Call.tool_calls))
    )
    with db.session() as s:
        return s.scalars(stmt).first()


def call_callbacks(call_sid: str) -> list[Callback]:
    with db.session() as s:
        return list(s.scalars(select(Callback).where(Callback.call_sid == call_sid)))


def threads(
    q: str = "", limit: int | None = None, since: dt.datetime | None = None
) -> list[Thread]:
    """Conversations whose texts match ``q`` (a number or words), newest activity first."""
    matching = select(Message.conversation_sid)
    q = q.strip()
    if q:
        digits = number_digits(q)
        if digits:
            matching = matching.where(Message.author.like(f"%{digits}%"))
        else:
            matching = matching.where(
                or_(Message.body.ilike(_like(q), escape="\\"), Message.conversation_sid == q)
            )
    if since is not None:
        matching = matching.where(Message.at >= since)
    newest = (
        select(
            Message.conversation_sid,
            func.max(Message.at).label("last_at"),
            func.count(Message.id).label("count"),
        )
        .where(Message.conversation_sid.in_(matching))
        .group_by(Message.conversation_sid)
        .order_by(func.max(Message.at).desc())
        .limit(_limit(limit))
    )
    out = []
    with db.session() as s:
        for sid, _last_at, count in s.execute(newest).all():
            last = s.scalars(
                select(Message)
                .where(Message.conversation_sid == sid)
                .order_by(Message.at.desc(), Message.id.desc())
                .limit(1)
            ).one()
            customer = s.scalars(
                select(Message.author)
                .where(Message.conversation_sid == sid, Message.sender == "customer")
                .order_by(Message.at.desc())
                .limit(1)
            ).first()
            out.append(Thread(sid, customer or "", last.at, last.body, last.sender, count))
    return out


def messages(conversation_sid: str) -> list[Message]:
    """The thread oldest first."""
    stmt = (
        select(Message)
        .where(Message.conversation_sid == conversation_sid)
        .order_by(Message.at, Message.id)
    )
    with db.session() as s:
        return list(s.scalars(stmt))


def takeovers(conversation_sid: str, limit: int = 10) -> list[Takeover]:
    stmt = (
        select(Takeover)
        .where(Takeover.conversation_sid == conversation_sid)
        .order_by(Takeover.taken_at.desc())
        .limit(limit)
    )
    with db.session() as s:
        return list(s.scalars(stmt))


def callbacks(open_only: bool = True, limit: int | None = None) -> list[Callback]:
    """Callbacks to make (oldest first: who has waited longest), or recently done ones."""
    stmt = select(Callback)
    if open_only:
        stmt = stmt.where(Callback.done_at.is_(None)).order_by(Callback.created_at, Callback.id)
    else:
        stmt = stmt.where(Callback.done_at.is_not(None)).order_by(Callback.done_at.desc())
    with db.session() as s:
        return list(s.scalars(stmt.limit(_limit(limit, 100))))


def export_rows(start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Every call and text in ``[start, end)``, oldest first, as flat CSV rows."""
    rows: list[dict[str, Any]] = []
    with db.session() as s:
        found = s.scalars(
            select(Call)
            .where(Call.started_at >= start, Call.started_at < end, Call.recorded.is_(True))
            .options(selectinload(Call.lines))
        )
        for c in found:
            rows.append(
                {
                    "kind": "call",
                    "at": c.started_at.isoformat() if c.started_at else "",
                    "id": c.call_sid,
                    "from": c.from_number,
                    "to": c.to_number,
                    "direction": c.direction,
                    "duration_seconds": ""
                    if c.duration_seconds is None
                    else round(c.duration_seconds),
                    "outcome": c.outcome,
                    "by": "",
                    "text": c.summary
                    or " / ".join(f"{line.role}: {line.text}" for line in c.lines),
                }
            )
        texts = s.scalars(
            select(Message).where(Message.at >= start, Message.at < end).order_by(Message.at)
        )
        for m in texts:
            rows.append(
                {
                    "kind": "text",
                    "at": m.at.isoformat(),
                    "id": m.message_sid,
                    "from": m.author,
                    "to": m.conversation_sid,
                    "direction": "inbound" if m.sender == "customer" else "outbound",
                    "duration_seconds": "",
                    "outcome": "",
                    "by": m.staff_number or m.sender,
                    "text": m.body,
                }
            )
    rows.sort(key=lambda r: r["at"])
    return rows
