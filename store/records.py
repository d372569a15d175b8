"""Reading the relay's call record (the JSON it queues at every call end) into row values.

Pure functions: no database here, so they are tested on their own and shared by the writer.
A transcript line is ``[who, text]`` (``who`` ``caller``, ``tool`` or ``assistant``, an
interrupted reply ``assistant (interrupted at 2.4 s)``) or
``{"role", "text", "offset", "interrupted"}``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from common.end_reasons import VOICEMAIL_REASONS

_CUT = re.compile(r"^(?P<role>[a-z_]+)\s*\((?P<note>[^)]*)\)\s*$")
#: Dial statuses meaning staff took the transferred call.
BRIDGED = ("completed", "answered")


@dataclass(frozen=True)
class Line:
    role: str
    text: str
    offset: float | None
    interrupted: bool
    note: str


def epoch_to_datetime(value: Any) -> dt.datetime | None:
    """Epoch seconds or ISO 8601 (the record allows both) as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed
    return None


def _role(who: str) -> tuple[str, bool, str]:
    """``assistant (interrupted at 2.4 s)`` → (``assistant``, True, ``interrupted at 2.4 s``)."""
    who = who.strip().lower()
    cut = _CUT.match(who)
    if cut:
        return cut["role"], True, cut["note"]
    return who or "unknown", False, ""


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def lines_of(record: dict[str, Any]) -> list[Line]:
    """The record's transcript lines in either shape; malformed entries are skipped."""
    out = []
    for raw in record.get("lines") or []:
        if isinstance(raw, list | tuple) and len(raw) == 2:
            role, cut, note = _role(str(raw[0]))
            out.append(Line(role, str(raw[1]), None, cut, note))
        elif isinstance(raw, dict) and "text" in raw:
            role, cut, note = _role(str(raw.get("role") or ""))
            interrupted = bool(raw.get("interrupted")) or cut
            if interrupted and not note and isinstance(raw.get("interrupted"), str):
                note = str(raw["interrupted"])[:120]
            out.append(Line(role, str(raw["text"]), _float(raw.get("offset")), interrupted, note))
    return out


def tool_calls_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for raw in record.get("tool_calls") or []:
        if not isinstance(raw, dict):
            continue
        result = raw.get("result")
        out.append(
            {
                "name": str(raw.get("name") or "")[:64],
                "arguments": raw.get("arguments") if raw.get("arguments") is not None else {},
                "result": result if isinstance(result, str) else json.dumps(result),
            }
        )
    return out


def call_values(record: dict[str, Any], bot_number: str) -> dict[str, Any]:
    """The ``calls`` row for a record (``bot_number`` is the other end of the line)."""
    direction = "outbound" if str(record.get("direction") or "").startswith("out") else "inbound"
    caller = str(record.get("caller") or "")
    started = epoch_to_datetime(record.get("started_at"))
    ended = epoch_to_datetime(record.get("ended_at"))
    duration = max(0.0, (ended - started).total_seconds()) if started and ended else None
    outcome = str(record.get("outcome") or record.get("end_reason") or "")
    transfers = [t for t in record.get("transfers") or [] if isinstance(t, dict)]
    last = transfers[-1] if transfers else {}
    messages = [m for m in record.get("messages") or [] if isinstance(m, dict)]
    recording = next(
        (str(m["recorded_message"]) for m in messages if m.get("recorded_message")), ""
    )
    return {
        "call_sid": str(record["call_sid"]),
        "from_number": caller if direction == "inbound" else bot_number,
        "to_number": bot_number if direction == "inbound" else caller,
        "direction": direction,
        "started_at": started,
        "ended_at": ended,
        "duration_seconds": duration,
        "outcome": outcome[:64],
        "voicemail": outcome in VOICEMAIL_REASONS or bool(recording),
        "transfer_to": str(last.get("to") or "")[:32],
        "transfer_status": str(last.get("status") or "")[:64],
        "recording_url": recording,
        "messages_taken": messages,
        "recorded": True,
    }


def callbacks_of(record: dict[str, Any], caller: str) -> list[dict[str, Any]]:
    """Who to call back after this call: each message taken, a transfer nobody answered, a
    voicemail the caller recorded. ``position`` keeps them unique per call and kind."""
    out: list[dict[str, Any]] = []
    messages = [m for m in record.get("messages") or [] if isinstance(m, dict)]
    for n, m in enumerate(messages):
        if m.get("recorded_message"):
            detail = f"Recorded message ({m.get('seconds') or '?'} s): {m['recorded_message']}"
            out.append({"kind": "voicemail", "position": n, "number": caller, "detail": detail})
        else:
            out.append(
                {
                    "kind": "message",
                    "position": n,
                    "number": str(m.get("callback_number") or caller)[:32],
                    "name": str(m.get("name") or "")[:120],
                    "detail": str(m.get("message") or m.get("text") or ""),
                }
            )
    for n, t in enumerate(t for t in record.get("transfers") or [] if isinstance(t, dict)):
        status = str(t.get("status") or "")
        if status and not status.startswith(BRIDGED):
            detail = f"Transfer to {t.get('to') or 'staff'} not answered ({status})"
            out.append(
                {"kind": "missed_transfer", "position": n, "number": caller, "detail": detail}
            )
    return out
