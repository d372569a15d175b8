"""The after-call summary: every call ends with a short text to staff.

The relay queues this task by name (:func:`relay.call.notify.queue_summary`) with the call's
record when a call ends. A worker summarises it with the chat model (who called, why, what the
assistant answered or promised, messages taken, transfers, follow-ups; at most
:data:`MAX_SUMMARY_CHARS`) and texts it from the bot's number to every ``STAFF_NOTIFY_TO``
number (``VOICEMAIL_NOTIFY_TO`` is added as an alias) and, with ``STAFF_CONVERSATION_SID``,
posts it into that Conversation as the bot, where staff can reply.

A call shorter than :data:`MISSED_CALL_SECONDS` in which the caller said nothing gets a
one-line "missed call" notice and no model call. If the model fails for good the summary is
built from the record alone: staff always hear about a call.

Exactly once per destination: a per-call lock keeps two deliveries apart, the text is kept
in Redis so a retry sends the same words, a marker per destination is set once Twilio took
it, and before posting to the Conversation the bot looks for a post already tagged with the
call. Twilio and OpenAI transient failures are retried with backoff.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from typing import Any

from celery import shared_task

from common.config import Config, get_config
from common.names import fit_sms
from common.redis_util import get_redis, key
from common.task_names import SUMMARIZE_CALL
from common.twilio_client import get_twilio
from store.records import lines_of
from tasks import call_log
from tasks.retry import is_transient, locked_run
from tasks.twilio_ops import MARKER_SECONDS

log = logging.getLogger(__name__)

MAX_SUMMARY_CHARS = 600
MISSED_CALL_SECONDS = 5.0
CALLER_WHO = ("caller", "user")
SYSTEM_PROMPT = (
    "You write the after-call summary that GateFrames staff receive by text message. "
    "GateFrames sells driveway gates, openers and accessories; an A.I. assistant answered "
    "the call. From the call record, say: who called (their phone number), why they called, "
    "what the assistant answered or promised, any message taken for staff, any transfer to "
    "staff and how it went, and what staff should follow up on. Plain text, no markdown, no "
    f"greeting, at most {MAX_SUMMARY_CHARS - 100} characters."
)


# -- the text (pure) --------------------------------------------------------------------------
def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
    return None


def duration_seconds(record: dict[str, Any]) -> float | None:
    start, end = _epoch(record.get("started_at")), _epoch(record.get("ended_at"))
    return max(0.0, end - start) if start is not None and end is not None else None


def caller_spoke(record: dict[str, Any]) -> bool:
    return any(
        str(who).lower().startswith(CALLER_WHO) and str(text).strip()
        for who, text in _lines(record)
    )


def is_missed(record: dict[str, Any]) -> bool:
    """A few seconds and not a word from the caller: nothing to summarise."""
    seconds = duration_seconds(record)
    return seconds is not None and seconds < MISSED_CALL_SECONDS and not caller_spoke(record)


def _lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(who, text)`` for lines given as ``[who, text]`` or ``{"role", "text", …}``; a line
    the caller talked over reads ``assistant (interrupted at 2.4 s)``."""
    return [
        (
            f"{line.role} ({line.note or 'interrupted'})" if line.interrupted else line.role,
            line.text,
        )
        for line in lines_of(record)
    ]


def _caller(record: dict[str, Any]) -> str:
    return str(record.get("caller") or "an unknown number")


def _when(record: dict[str, Any]) -> str:
    start = _epoch(record.get("started_at"))
    if start is None:
        return ""
    return dt.datetime.fromtimestamp(start, dt.UTC).strftime(" at %H:%M UTC on %b %d")


def missed_text(record: dict[str, Any]) -> str:
    return f"Missed call from {_caller(record)}{_when(record)} (call {record.get('call_sid')})."


def fit(text: str, limit: int = MAX_SUMMARY_CHARS) -> str:
    """``text`` on one line (whitespace runs made single spaces), cut by :func:`fit_sms`."""
    return fit_sms(" ".join(text.split()), limit)


def head(record: dict[str, Any]) -> str:
    seconds = duration_seconds(record)
    length = f", {seconds:.0f} s" if seconds is not None else ""
    direction = str(record.get("direction") or "inbound")
    return f"Call summary: {_caller(record)} ({direction}{length}{_when(record)}): "


def _items(record: dict[str, Any], name: str) -> list[str]:
    out = []
    for item in record.get(name) or []:
        out.append(json.dumps(item, ensure_ascii=False) if not isinstance(item, str) else item)
    return out


def render_record(record: dict[str, Any]) -> str:
    """The record as the model reads it."""
    seconds = duration_seconds(record)
    parts = [
        f"Caller number: {_caller(record)}",
        f"Direction: {record.get('direction') or 'inbound'}",
        f"Duration: {f'{seconds:.0f} s' if seconds is not None else 'unknown'}",
        f"Ended: {record.get('outcome') or record.get('end_reason') or 'unknown'}",
        "Transcript:",
        *(f"  {who}: {text}" for who, text in _lines(record)),
    ]
    for name, title in (
        ("tool_calls", "Actions taken"),
        ("messages", "Messages taken"),
        ("transfers", "Transfers"),
    ):
        items = _items(record, name)
        parts += [f"{title}:", *(f"  {i}" for i in items)] if items else [f"{title}: none"]
    return "\n".join(parts)


def prompt(record: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": render_record(record)},
    ]


def with_head(record: dict[str, Any], body: str) -> str:
    return fit(head(record) + body)


def fallback_text(record: dict[str, Any]) -> str:
    """A summary from the record alone, for when the model cannot give one."""
    said = " ".join(t for w, t in _lines(record) if w.lower().startswith(CALLER_WHO))
    answered = " ".join(t for w, t in _lines(record) if w.lower().startswith("assistant"))
    bits = [f"Caller said: {fit(said, 180)}" if said else "Caller said nothing transcribed."]
    if answered:
        bits.append(f"Assistant: {fit(answered, 140)}")
    for name, title in (
        ("transfers", "Transfer"),
        ("messages", "Message"),
        ("tool_calls", "Action"),
    ):
        bits += [f"{title}: {fit(i, 100)}" for i in _items(record, name)]
    ended = record.get("outcome") or record.get("end_reason")
    if ended:
        bits.append(f"Ended: {ended}.")
    return with_head(record, " ".join(bits))


def summary_from_model(record: dict[str, Any], reply: str) -> str:
    return with_head(record, reply)


def destinations(cfg: Config, extra: list[str] | None = None) -> list[str]:
    """STAFF_NOTIFY_TO, the VOICEMAIL_NOTIFY_TO alias and any explicit numbers, once each."""
    numbers = [*getattr(cfg, "staff_notify_to", ()), cfg.voicemail_notify_to, *(extra or [])]
    return list(dict.fromkeys(n for n in numbers if n))


# -- the task ---------------------------------------------------------------------------------
@shared_task(bind=True, name=SUMMARIZE_CALL, acks_late=True, max_retries=None)
def summarize_call(self, record: dict[str, Any], to: list[str] | None = None) -> str:
    cfg = get_config()
    call_sid = str(record.get("call_sid") or "")
    ctx = {"call_sid": call_sid, "task_id": self.request.id, "attempt": self.request.retries}
    numbers = destinations(cfg, to)
    conversation = getattr(cfg, "staff_conversation_sid", "")
    if not call_sid or not (numbers or conversation):
        log.info("call summary not wanted", extra={**ctx, "outcome": "skipped"})
        return "skipped"

    def work() -> str:
        text = _text_once(self, cfg, record, call_sid)
        call_log.store_summary(call_sid, text)
        return _deliver(cfg, call_sid, text, numbers, conversation, ctx)

    return locked_run(self, cfg, key("lock", "summary", call_sid), ctx, "call summary", work)


def _text_once(task: Any, cfg: Config, record: dict[str, Any], call_sid: str) -> str:
    """The summary, made once per call (a redelivery sends the same words)."""
    r = get_redis()
    stored = r.get(key("summary_text", call_sid))
    if stored:
        return stored.decode() if isinstance(stored, bytes) else str(stored)
    text = missed_text(record) if is_missed(record) else _ask_model(task, cfg, record, call_sid)
    r.set(key("summary_text", call_sid), text, ex=MARKER_SECONDS)
    return text


def _ask_model(task: Any, cfg: Config, record: dict[str, Any], call_sid: str) -> str:
    from common.openai_client import get_openai

    try:
        response = get_openai().chat.completions.create(
            model=cfg.openai_chat_model,
            messages=prompt(record),  # type: ignore[arg-type]
        )
        reply = (response.choices[0].message.content or "").strip() if response.choices else ""
    except Exception as exc:
        if is_transient(exc) and task.request.retries < cfg.task_max_retries:
            raise  # retried by the task
        reply = ""
        log.warning(
            "call summary model failed, sending the plain summary: %s",
            type(exc).__name__,
            extra={"call_sid": call_sid, "outcome": "fallback"},
        )
    return summary_from_model(record, reply) if reply else fallback_text(record)


def _deliver(
    cfg: Config,
    call_sid: str,
    text: str,
    numbers: list[str],
    conversation: str,
    ctx: dict[str, Any],
) -> str:
    r, client, failed = get_redis(), get_twilio(), 0
    for number in numbers:
        marker = key("summary_sms", call_sid, number)
        if r.exists(marker):
            continue
        try:
            sent = client.messages.create(to=number, from_=cfg.bot_projected_address, body=text)
        except Exception as exc:
            if is_transient(exc):
                raise
            failed += 1  # this number refused (e.g. not a mobile): the others still get it
            log.error(
                "call summary SMS refused: %s",
                f"{type(exc).__name__}: {exc}"[:300],
                extra={**ctx, "outcome": "sms_refused"},
            )
            continue
        r.set(marker, sent.sid or "sent", ex=MARKER_SECONDS)
    if conversation:
        _post_once(cfg, client, conversation, call_sid, text)
    return "sent" if not failed else "partly_sent"


def _post_once(cfg: Config, client: Any, conversation: str, call_sid: str, text: str) -> None:
    marker = key("summary_post", call_sid)
    r = get_redis()
    if r.exists(marker):
        return
    thread = client.conversations.v1.conversations(conversation)
    for message in thread.messages.list(order="desc", limit=50):
        with contextlib.suppress(ValueError, TypeError):
            if json.loads(message.attributes or "{}").get("call_summary") == call_sid:
                r.set(marker, message.sid, ex=MARKER_SECONDS)  # posted before a crash
                return
    attributes = json.dumps({"kind": "call_summary", "call_summary": call_sid})
    posted = thread.messages.create(author=cfg.bot_identity, body=text, attributes=attributes)
    r.set(marker, posted.sid or "posted", ex=MARKER_SECONDS)
