"""The call model: a Call resource as Api 2010 renders it, how its status moves, and what a
running call is told to do next.

The REST routes (:mod:`sandbox.twilio_sim.calls`), the call runner
(:mod:`sandbox.twilio_sim.callflow`), ``<Dial>`` (:mod:`sandbox.twilio_sim.dialing`) and the
phone network's control side (:mod:`sandbox.twilio_sim.phone`) all change calls through this
module, so none of them needs another's internals.

``AnsweredBy`` follows from the call's ``MachineDetection`` (Twilio's AMD docs): nothing without
it, ``machine_start`` only with ``Enable``, ``machine_end_*`` only with ``DetectMessageEnd``,
``human``/``fax``/``unknown`` with either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.twilio_sim import rules
from sandbox.twilio_sim.records import new_sid, rfc2822_now

ENDED = {"completed", "canceled", "busy", "failed", "no-answer"}
NOT_ANSWERED = {"queued", "ringing"}
_EITHER = ("human", "fax", "unknown")
#: Which AnsweredBy values each MachineDetection mode can produce.
ANSWERED_BY: dict[str, tuple[str, ...]] = {
    "Enable": ("machine_start", *_EITHER),
    "DetectMessageEnd": (
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        *_EITHER,
    ),
}


@dataclass
class Next:
    """The next document: TwiML text, a URL to fetch (with extra form fields), or hang up."""

    kind: str  # "twiml" | "url" | "hangup"
    value: str = ""
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    why: str = ""


class Interrupted(Exception):
    """An update arrived while a verb ran."""


def formatted(number: str) -> str:
    if rules.E164.match(number) and number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def answered_by_values(machine_detection: str | None) -> tuple[str, ...]:
    """The AnsweredBy values a call made with this MachineDetection can report (none without)."""
    return ANSWERED_BY.get(machine_detection or "", ())


def new_call(
    account_sid: str,
    to: str,
    from_: str,
    direction: str,
    extra: dict[str, Any],
    parent_call_sid: str | None = None,
) -> dict[str, Any]:
    """A Call resource as Api 2010 renders it (``_extra`` holds what the sandbox needs)."""
    sid, now = new_sid("CA"), rfc2822_now()
    base = f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}"
    return {
        "sid": sid,
        "date_created": now,
        "date_updated": now,
        "parent_call_sid": parent_call_sid,
        "account_sid": account_sid,
        "to": to,
        "to_formatted": formatted(to),
        "from": from_,
        "from_formatted": formatted(from_),
        "phone_number_sid": "PN" + sid[2:],
        "status": "queued",
        "start_time": None,
        "end_time": None,
        "duration": None,
        "price": None,
        "price_unit": "USD",
        "direction": direction,
        "answered_by": None,
        "annotation": None,
        "api_version": "2010-04-01",
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{base}.json",
        "subresource_uris": {
            name: f"{base}/{name.title().replace('_', '')}.json"
            for name in ("notifications", "recordings", "payments", "events", "siprec", "streams")
        },
        "_extra": {"url": None, "method": "POST", "twiml": None, "updates": [], **extra},
    }


def set_status(call: dict[str, Any], status: str, answered_by: str | None = None) -> None:
    """Move a call along queued → ringing → in-progress → an end state, with timestamps."""
    now = rfc2822_now()
    if status == "in-progress" and not call["start_time"]:
        call["start_time"] = now
        call["_extra"]["answered_at"] = time.monotonic()
    if answered_by:
        call["answered_by"] = answered_by
    if status in ENDED and call["status"] not in ENDED:
        call["end_time"] = now
        started = call["_extra"].get("answered_at")
        call["duration"] = str(int(time.monotonic() - started)) if started else "0"
    call["status"] = status
    call["date_updated"] = now
