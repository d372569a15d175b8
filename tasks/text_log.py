"""The worker's writes of texts to the log, as it handles them.

Best effort by design: the log must never stop a customer's answer, so a write that fails
(database down, schema not migrated) is logged with the conversation and message SIDs and
the reply goes on. Every write is keyed on the message SID, so a re-run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from twilio.rest import Client

from common.redis_util import get_redis, key
from store import db, writes
from tasks.chat import Turn

log = logging.getLogger(__name__)


def _when(raw: Any) -> dt.datetime | None:
    if isinstance(raw, dt.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)
    if isinstance(raw, str) and raw:
        try:
            return _when(dt.datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _body(body: str, media: list[str] | tuple[str, ...] = ()) -> str:
    extra = " ".join(f"[{kind or 'attachment'}]" for kind in media)
    return f"{body} {extra}".strip() if extra else body


def _write(ctx: dict[str, Any], **values: Any) -> None:
    # Twilio's times have whole seconds: ours too, so a thread sorts by (time, arrival).
    values["at"] = (values.get("at") or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    if not db.ready():
        return  # said once by db.ready(); answering texts goes on without the log
    try:
        writes.store_message(**values)
    except Exception as exc:
        log.error(
            "text not stored in the log: %s",
            type(exc).__name__,
            extra={**ctx, "message_sid": values.get("message_sid"), "outcome": "log_failed"},
        )


def record_turn(conversation_sid: str, turn: Turn, at: Any = None) -> None:
    """A customer's (or staff phone's) text as it arrived."""
    if not turn.sid:
        return
    _write(
        {"conversation_sid": conversation_sid},
        message_sid=turn.sid,
        conversation_sid=conversation_sid,
        author=turn.author,
        body=_body(turn.body, turn.media),
        at=_when(at),
        sender="customer",
    )


def record_post(
    client: Client,
    conversation_sid: str,
    reply_key: str,
    body: str | None,
    sid: str | None,
    *,
    author: str,
    sender: str = "assistant",
    staff_number: str = "",
) -> None:
    """What the bot posted for ``reply_key``. ``sid`` None: an earlier run posted it (the
    reply marker names the message), so it is stored from Twilio if the log lacks it."""
    ctx = {"conversation_sid": conversation_sid}
    at = None
    try:
        if sid is None:
            sid = get_redis().get(key("replied", reply_key))
            if not sid or not db.ready() or writes.has_message(sid):
                return
            posted = client.conversations.v1.conversations(conversation_sid).messages(sid).fetch()
            body, at = posted.body or "", posted.date_created
    except Exception as exc:
        log.error(
            "posted reply not stored in the log: %s",
            type(exc).__name__,
            extra={**ctx, "message_sid": reply_key, "outcome": "log_failed"},
        )
        return
    _write(
        ctx,
        message_sid=sid,
        conversation_sid=conversation_sid,
        author=author,
        body=body or "",
        at=_when(at),
        sender=sender,
        reply_to=reply_key,
        staff_number=staff_number,
    )
