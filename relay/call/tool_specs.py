"""What the voice assistant's tools are: their names, the function schemas the model is given,
and how their arguments are read.

Tools (``end_call`` always; ``transfer_to_staff`` only with ``STAFF_TRANSFER_NUMBER``):

- ``end_call()``: the model says a short goodbye, then the call ends.
- ``transfer_to_staff(reason)``: inside ``STAFF_HOURS`` the model says it is connecting, then
  the call is redirected to staff; outside them nothing happens and the model offers a message.
- ``send_text(message)``: an SMS to the caller's own number (never another) from the bot number,
  beginning with the identity sentence; one per ``TEXT_INTERVAL_SECONDS``, a few per call.
- ``take_message(name, callback_number, message)``: kept for staff; the callback number must be
  an ordinary US/Canadian number.

A bad call is answered with every problem its arguments have, at once, so the model can
correct all of them in one more try.
"""

from __future__ import annotations

import json
from typing import Any

END_CALL = "end_call"
TRANSFER = "transfer_to_staff"
SEND_TEXT = "send_text"
TAKE_MESSAGE = "take_message"
TOOL_NAMES = (END_CALL, TRANSFER, SEND_TEXT, TAKE_MESSAGE)
#: Longest raw arguments string parsed; a real call is a few hundred characters.
MAX_ARGUMENTS_CHARS = 4000
#: Per field: the longest value accepted (characters, after trimming).
LIMITS: dict[str, dict[str, int]] = {
    END_CALL: {},
    TRANSFER: {"reason": 200},
    SEND_TEXT: {"message": 600},
    TAKE_MESSAGE: {"name": 100, "callback_number": 32, "message": 1000},
}


def _function(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }


def _string(description: str, limit: int) -> dict[str, Any]:
    return {"type": "string", "description": description, "maxLength": limit}


def tool_definitions(transfer: bool, caller: str = "") -> list[dict[str, Any]]:
    """The function tools for a live call (voicemail sessions get none); ``transfer`` when
    there is a staff line to transfer to."""
    own = f" The caller is calling from {caller}." if caller else ""
    tools = [
        _function(
            END_CALL,
            "End the phone call when the caller is done or says goodbye. You will then say "
            "a short goodbye.",
            {},
        )
    ]
    if transfer:
        tools.append(
            _function(
                TRANSFER,
                "Connect the caller to a GateFrames team member when they ask for a person "
                "or you cannot help. Staff may be away; the result says so.",
                {"reason": _string("What the caller needs, in a few words.", 200)},
            )
        )
    tools.append(
        _function(
            SEND_TEXT,
            "Text the caller (only their own number) something they asked for in writing, "
            "such as a product link or a summary." + own,
            {"message": _string("The text to send, short and plain.", 600)},
        )
    )
    tools.append(
        _function(
            TAKE_MESSAGE,
            "Take a message for GateFrames staff, who will call back." + own,
            {
                "name": _string("The caller's name.", 100),
                "callback_number": _string(
                    "A US or Canadian phone number to call back, digits only.", 32
                ),
                "message": _string("The message for staff.", 1000),
            },
        )
    )
    return tools


class BadArguments(ValueError):
    """Every problem found in a tool call's arguments, in one message."""


def parse_arguments(name: str, raw: str) -> dict[str, str]:
    """The tool's fields, trimmed; :class:`BadArguments` names every problem otherwise."""
    limits = LIMITS[name]
    if len(raw) > MAX_ARGUMENTS_CHARS:
        raise BadArguments(f"the arguments are too long (over {MAX_ARGUMENTS_CHARS} characters)")
    if not raw.strip() and not limits:
        return {}  # a function without parameters may come with empty arguments
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadArguments("the arguments are not valid JSON") from None
    if not isinstance(data, dict):
        raise BadArguments("the arguments must be a JSON object")
    problems: list[str] = []
    extra = sorted(str(k)[:40] for k in set(data) - set(limits))
    if extra:
        fields = ", ".join(repr(k) for k in extra)
        problems.append(f"unexpected field{'s' if len(extra) > 1 else ''} {fields}")
    out: dict[str, str] = {}
    for key, limit in limits.items():
        if key not in data:
            problems.append(f"missing field {key!r}")
            continue
        value = data[key]
        if not isinstance(value, str):
            problems.append(f"field {key!r} must be a string")
            continue
        value = " ".join(value.split())  # no control characters into an SMS or a <Say>
        if not value:
            problems.append(f"field {key!r} is empty")
        elif len(value) > limit:
            problems.append(f"field {key!r} is too long (at most {limit} characters)")
        else:
            out[key] = value
    if problems:
        raise BadArguments("; ".join(problems))
    return out
