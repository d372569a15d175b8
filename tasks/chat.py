"""Turning a conversation into a chat request, and the model's answer into an SMS.

The history is the newest messages (not the oldest) in chronological order, bot turns are
assistant turns, and the request carries only parameters every current chat model accepts
(reasoning models reject ``temperature`` and ``max_tokens``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from openai import OpenAI

from common.names import SMS_MAX_CHARS, fit_sms
from common.prompts import chat_prompt, with_identity
from tasks.parsing import strip_mention

#: Twilio's limit for one Conversations message body.
MAX_BODY_CHARS = SMS_MAX_CHARS


@dataclass(frozen=True)
class Turn:
    """One message of the conversation, as the task sees it."""

    author: str
    body: str
    media: tuple[str, ...] = ()  # content types
    index: int = -1
    sid: str = ""


def media_types(raw: Any) -> tuple[str, ...]:
    """Content types from a webhook ``Media`` field (JSON string) or a REST ``media`` list.
    Key casing is not documented for webhooks, so accept both styles."""
    if not raw:
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return ("unknown",)
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(str(item.get("content_type") or item.get("ContentType") or "unknown"))
    return tuple(out)


def describe_media(types: tuple[str, ...]) -> str:
    kinds = []
    for t in types:
        kind = t.split("/")[0]
        kinds.append(
            {"image": "a photo", "video": "a video", "audio": "a voice memo"}.get(kind, "a file")
        )
    return "[sent " + ", ".join(kinds) + "]"


def _user_text(turn: Turn, is_group: bool) -> str:
    text = strip_mention(turn.body) if is_group else turn.body.strip()
    if turn.media:
        text = (text + " " + describe_media(turn.media)).strip()
    return f"{turn.author}: {text}" if is_group else text


def build_messages(
    history: list[Turn], current: Turn, *, bot_authors: set[str], is_group: bool
) -> list[dict[str, Any]]:
    """System prompt, earlier turns (oldest first), then the message being answered."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": chat_prompt()}]
    for turn in history:
        if turn.sid and turn.sid == current.sid:
            continue
        if turn.author in bot_authors:
            if turn.body.strip():
                messages.append({"role": "assistant", "content": turn.body.strip()})
        elif turn.body.strip() or turn.media:
            messages.append({"role": "user", "content": _user_text(turn, is_group)})
    text = _user_text(current, is_group)
    if current.media and not strip_mention(current.body).strip():
        text += (
            " (The customer sent this without any words. Acknowledge what they sent, say you "
            "cannot view attachments by text, and ask how you can help with their gate.)"
        )
    messages.append({"role": "user", "content": text})
    return messages


class EmptyReply(Exception):
    """The model returned no text; treated like a transient failure."""


def complete(client: OpenAI, model: str, messages: list[dict[str, Any]]) -> str:
    """One chat completion, returned as an SMS body that starts with the identity line."""
    response = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    content = (response.choices[0].message.content or "").strip() if response.choices else ""
    if not content:
        raise EmptyReply(f"model {model} returned no text")
    return fit_sms(with_identity(content))
