"""The log's tables. Every row that comes from Twilio is keyed on its SID (unique), so a
redelivered task or a duplicate webhook finds its row instead of making a second one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no zone: it is put back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Call(Base):
    """One phone call, from the relay's record at its end (and the summary, when made)."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    to_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(64), default="")
    voicemail: Mapped[bool] = mapped_column(Boolean, default=False)
    transfer_to: Mapped[str] = mapped_column(String(32), default="")
    transfer_status: Mapped[str] = mapped_column(String(64), default="")
    recording_url: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    #: Messages taken for staff: ``{"name", "callback_number", "message"}`` or a recording.
    messages_taken: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: True once the relay's record arrived (a summary may create the row first).
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    lines: Mapped[list[TranscriptLine]] = relationship(
        back_populates="call", order_by="TranscriptLine.position", passive_deletes=True
    )
    tool_calls: Mapped[list[ToolCall]] = relationship(
        back_populates="call", order_by="ToolCall.position", passive_deletes=True
    )


class TranscriptLine(Base):
    __tablename__ = "transcript_lines"
    __table_args__ = (UniqueConstraint("call_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # caller, assistant, tool
    text: Mapped[str] = mapped_column(Text)
    #: Seconds from the call's start, when the relay supplied it.
    offset_seconds: Mapped[float | None] = mapped_column(Float)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How it was cut ("interrupted at 2.4 s", "cut off by the time limit").
    note: Mapped[str] = mapped_column(String(120), default="")

    call: Mapped[Call] = relationship(back_populates="lines")


class ToolCall(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (UniqueConstraint("call_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[Any] = mapped_column(JSON, default=dict)
    result: Mapped[str] = mapped_column(Text, default="")

    call: Mapped[Call] = relationship(back_populates="tool_calls")


class Message(Base):
    """One text in a Conversation, whoever wrote it."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_at", "conversation_sid", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_sid: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64), default="", index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: The message this one answers (the assistant's and staff's replies).
    reply_to: Mapped[str] = mapped_column(String(80), default="")
    #: ``customer``, ``assistant`` or ``staff``.
    sender: Mapped[str] = mapped_column(String(16), default="customer")
    #: The staff member's number for a staff reply.
    staff_number: Mapped[str] = mapped_column(String(32), default="")


class Callback(Base):
    """Someone to call back: a message taken, an unanswered transfer, a recorded voicemail."""

    __tablename__ = "callbacks"
    __table_args__ = (UniqueConstraint("call_sid", "kind", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))  # message, missed_transfer, voicemail
    position: Mapped[int] = mapped_column(Integer, default=0)
    number: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str] = mapped_column(String(32), default="")


class Takeover(Base):
    """A staff member holding a conversation (the assistant silent there) and its end."""

    __tablename__ = "takeovers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_sid: Mapped[str] = mapped_column(String(64), index=True)
    taken_by: Mapped[str] = mapped_column(String(32))
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: A staff number, or ``idle`` when TAKEOVER_IDLE_MINUTES passed without a staff message.
    released_by: Mapped[str] = mapped_column(String(32), default="")
