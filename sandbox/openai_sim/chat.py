"""Deterministic chat completions: the reply is computed from the request alone.

The reply quotes the last user text and counts the messages received, so tests can assert
what context the app sent. It deliberately does not begin with the GateFrames identity line:
adding that is the app's job. Token counts are a fixed estimate (4 characters per token).
Reasoning models also spend a fixed 64 reasoning tokens, so a too-small
``max_completion_tokens`` yields an empty reply with ``finish_reason: "length"``, as it does
on the real service.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from typing import Any

from sandbox.openai_sim.validate import is_reasoning

QUOTE_CHARS = 200
REASONING_TOKENS = 64
_ALNUM = string.ascii_letters + string.digits


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _parts(content: Any) -> tuple[str, int]:
    """(text, image count) of a message's content."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts = [p.get("text", "") for p in content if p.get("type") == "text"]
    images = sum(1 for p in content if p.get("type") == "image_url")
    return " ".join(texts), images


def reply_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"] or messages
    text, images = _parts(users[-1].get("content"))
    text = " ".join(text.split())
    quoted = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    extra = ""
    if images:
        extra = f"; I saw {images} image{'s' if images > 1 else ''}"
    return f'GateFrames sim reply to: "{quoted}" (context messages: {len(messages)}{extra})'


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 3
    for m in messages:
        text, images = _parts(m.get("content"))
        total += 4 + _tokens(text) + 85 * images
    return total


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object for a request that passed validation."""
    model: str = body["model"]
    messages: list[dict[str, Any]] = body["messages"]
    content = reply_text(messages)
    reasoning = REASONING_TOKENS if is_reasoning(model) else 0
    budget = body.get("max_completion_tokens") or body.get("max_tokens")
    output = _tokens(content)
    finish = "stop"
    if budget is not None and reasoning + output > budget:
        finish = "length"
        room = max(budget - reasoning, 0)
        content = content[: room * 4]
        output = _tokens(content)
        reasoning = min(reasoning, budget)
    prompt = _prompt_tokens(messages)
    n = body.get("n") or 1
    return {
        "id": "chatcmpl-" + "".join(secrets.choice(_ALNUM) for _ in range(29)),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish,
            }
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": (output + reasoning) * n,
            "total_tokens": prompt + (output + reasoning) * n,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning * n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default"
        if body.get("service_tier") in (None, "auto")
        else body["service_tier"],
        "system_fingerprint": None,
    }
