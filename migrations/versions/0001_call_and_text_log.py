"""The call and text log: calls, transcript lines, tool calls, texts, callbacks, takeovers.

Revision ID: 0001
Revises:
Create Date: 2026-12-07 17:39:17.898919
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("voicemail", sa.Boolean(), nullable=False),
        sa.Column("transfer_to", sa.String(length=32), nullable=False),
        sa.Column("transfer_status", sa.String(length=64), nullable=False),
        sa.Column("recording_url", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("messages_taken", sa.JSON(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_from_number"), ["from_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_to_number"), ["to_number"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("conversation_sid", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_to", sa.String(length=80), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("staff_number", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_author"), ["author"], unique=False)
        batch_op.create_index(
            "ix_messages_conversation_at", ["conversation_sid", "at"], unique=False
        )

    op.create_table(
        "takeovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_sid", sa.String(length=64), nullable=False),
        sa.Column("taken_by", sa.String(length=32), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("takeovers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_takeovers_conversation_sid"), ["conversation_sid"], unique=False
        )

    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "kind", "position"),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbacks_created_at"), ["created_at"], unique=False)

    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id", "position"),
    )
    op.create_table(
        "transcript_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("offset_seconds", sa.Float(), nullable=True),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id", "position"),
    )


def downgrade() -> None:

    op.drop_table("transcript_lines")
    op.drop_table("tool_calls")
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callbacks_created_at"))

    op.drop_table("callbacks")
    with op.batch_alter_table("takeovers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_takeovers_conversation_sid"))

    op.drop_table("takeovers")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_conversation_at")
        batch_op.drop_index(batch_op.f("ix_messages_author"))
        batch_op.drop_index(batch_op.f("ix_messages_at"))

    op.drop_table("messages")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_to_number"))
        batch_op.drop_index(batch_op.f("ix_calls_started_at"))
        batch_op.drop_index(batch_op.f("ix_calls_from_number"))
        batch_op.drop_index(batch_op.f("ix_calls_created_at"))

    op.drop_table("calls")
