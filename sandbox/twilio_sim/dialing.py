"""``<Dial><Number>``: the simulated phone network rings another phone (a staff member's).

Each dialled number is a child call (``parent_call_sid`` = the caller's call, direction
``outbound-dial``) that rings; whether and when that phone answers is set through
``POST /_sandbox/phones/<number>`` (default: answers after one second, talks two seconds, then
hangs up). When it answers, Twilio requests the ``<Number url>`` (the whisper) for the called
party and plays it to them alone; what staff heard is logged. Then the two are bridged until
staff hangs up. Unanswered within ``timeout`` (default 30 s) the ``<Dial>`` ends with
``DialCallStatus=no-answer``; then Twilio requests the Dial ``action`` if there is one, else
goes on with the next verb.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sandbox.twilio_sim import rules, twiml
from sandbox.twilio_sim.call_model import Interrupted, Next, new_call, set_status

if TYPE_CHECKING:
    from sandbox.twilio_sim.callflow import CallFlow


@dataclass
class PhoneBehaviour:
    """How a dialled phone behaves (``/_sandbox/phones/<number>``)."""

    answer: bool = True
    busy: bool = False
    ring_seconds: float = 1.0
    talk_seconds: float = 2.0

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> PhoneBehaviour:
        unknown = set(payload) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown phone fields {sorted(unknown)}")
        b = cls(**payload)
        if b.ring_seconds < 0 or b.talk_seconds < 0:
            raise ValueError("ring_seconds and talk_seconds must be >= 0")
        b.answer, b.busy = bool(b.answer), bool(b.busy)
        return b

    def view(self) -> dict[str, Any]:
        return asdict(self)


def _targets(verb: twiml.Verb) -> list[twiml.Verb]:
    """The ``<Number>`` nouns, or a bare number as the Dial's text."""
    numbers = [c for c in verb.children if c.name == "Number"]
    if not numbers and verb.text:
        numbers = [twiml.Verb("Number", {}, verb.text)]
    return numbers


def dial(flow: CallFlow, verb: twiml.Verb) -> Next | None:
    s, store = flow.sim, flow.sim.store
    timeout = verb.seconds("timeout", 30)
    with store.lock:
        parent = dict(flow.call())
    caller_id = verb.attr("callerId") or parent["from"]
    legs: list[tuple[twiml.Verb, dict[str, Any], PhoneBehaviour]] = []
    for number in _targets(verb):
        if not rules.E164.match(number.text):
            flow.note(
                "error", code=13223, message=f"Dial: Invalid phone number format {number.text!r}"
            )
            continue
        child = new_call(
            parent["account_sid"], number.text, caller_id, "outbound-dial", {}, parent["sid"]
        )
        with store.lock:
            store.calls[child["sid"]] = child
            set_status(child, "ringing")
        legs.append((number, child, s.phones.get(number.text, PhoneBehaviour())))
    record: dict[str, Any] = {
        "numbers": [n.text for n, _, _ in legs],
        "caller_id": caller_id,
        "timeout": timeout,
        "answered": None,
        "whisper": [],
    }
    answering = [
        (b.ring_seconds, n, c, b)
        for n, c, b in legs
        if b.answer and not b.busy and b.ring_seconds < timeout
    ]
    status, winner = "failed" if not legs else "no-answer", None
    try:
        if answering:
            ring, number, child, behaviour = min(answering, key=lambda t: t[0])
            flow.sleep(ring)
            winner = (number, child, behaviour)
        elif legs and all(b.busy for _, _, b in legs):
            status = "busy"
        elif legs:
            flow.sleep(timeout)
        for _, child, behaviour in legs:
            if winner is None or child is not winner[1]:
                with store.lock:
                    set_status(child, "busy" if behaviour.busy else "no-answer")
        if winner is not None:
            status = _connect(flow, record, *winner)
    except Interrupted:
        with store.lock:
            for _, child, _ in legs:
                if child["status"] in ("ringing", "in-progress"):
                    set_status(
                        child, "completed" if child["status"] == "in-progress" else "canceled"
                    )
        record["status"] = "interrupted"
        flow.note("dial", **record)
        raise
    record["status"] = status
    flow.note("dial", **record)
    params = {"DialCallStatus": status}
    if winner is not None:
        params["DialCallSid"] = winner[1]["sid"]
        params["DialCallDuration"] = winner[1]["duration"] or "0"
    action = verb.attr("action")
    if not action:
        return None  # Twilio goes on with the verb after </Dial>
    return Next("url", flow.resolve(action), verb.attr("method", "POST"), params, why="dial_action")


def _connect(
    flow: CallFlow,
    record: dict[str, Any],
    number: twiml.Verb,
    child: dict[str, Any],
    behaviour: PhoneBehaviour,
) -> str:
    """Staff answered: play the whisper to them, bridge, and end when they hang up."""
    store = flow.sim.store
    with store.lock:
        set_status(child, "in-progress")
    record["answered"] = number.text
    record["dial_call_sid"] = child["sid"]
    if number.attr("url"):
        url = flow.resolve(number.attr("url"))
        body = flow.fetch(url, number.attr("method", "POST"), flow.call_params(child), "whisper")
        try:
            whisper = twiml.parse(body) if body is not None else []
        except twiml.TwimlError as exc:
            flow.note("error", code=exc.code, message=str(exc))
            whisper = [twiml.Verb("Hangup", {})]
        for verb in whisper:
            if verb.name == "Say":
                record["whisper"].append(verb.text)
                flow.note("say", leg="staff", to=number.text, text=verb.text)
            elif verb.name == "Hangup":
                # the called party is let go before the bridge: the caller's Dial goes on
                with store.lock:
                    set_status(child, "completed")
                record["whisper_hangup"] = True
                return "no-answer"
    flow.note("bridged", to=number.text, dial_call_sid=child["sid"])
    try:
        flow.sleep(behaviour.talk_seconds)
    finally:
        with store.lock:
            set_status(child, "completed")
    return "completed"
