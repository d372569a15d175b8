"""What the relay does once a call's stream has ended: metrics, the call's record (queued
for the call log after every call, :func:`relay.call.notify.queue_record`), and the after-call
summary for staff (or the voicemail notice).

It runs in its own greenlet (:func:`after_call`), never on a call's frame loops, after the
call session has closed the stream (:mod:`relay.call.session`). Which text a call produces,
so that no number gets two texts about one call:

- a summary destination (``STAFF_NOTIFY_TO`` or ``STAFF_CONVERSATION_SID``) is set: every call
  gets the summary task (:mod:`tasks.summary`), which also texts ``VOICEMAIL_NOTIFY_TO``; a
  voicemail left is in it (outcome ``voicemail_left`` and what the assistant said), so no
  separate voicemail notice is queued;
- only ``VOICEMAIL_NOTIFY_TO`` is set: a call answered by a machine keeps the voicemail notice
  as before (its own wording, sent only when the message was left), every other call gets the
  summary (to that number);
- none is set: nothing is queued, logged once per process.

A call that moved to another relay (``handed_over``) is summarised by the relay that ends it.
A transferred call's record waits for Twilio's ``DialCallStatus`` (``/twilio/voice/transfer/after``
writes it to ``gf:call_notes:<CallSid>``), and after a missed transfer for the caller's
recorded message, so staff read how the transfer went.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import gevent
import redis

from common import call_keys
from common.config import Config
from common.end_reasons import VOICEMAIL_REASONS, EndReason
from common.names import BRIDGED
from common.redis_util import get_redis
from common.stream_twiml import is_outbound, other_party
from relay import metrics
from relay.call import notify

if TYPE_CHECKING:
    from relay.call.outputs import EndCall
    from relay.call.session import TwilioCall

log = logging.getLogger(__name__)

#: Ends after which this relay does not summarise: the call goes on elsewhere, or it never
#: was one of ours.
NOT_SUMMARISED = frozenset({EndReason.HANDED_OVER, EndReason.CALL_SID_MISMATCH})
POLL_SECONDS = 1.0
#: After a missed transfer the caller may record up to 2 minutes (webhooks.transfer).
RECORDING_WAIT_SECONDS = 150.0
ACTION_WAIT_SECONDS = 15.0

_warned_no_destination = False


def count_call(call: TwilioCall, ended: EndCall) -> None:
    """Reconnects, handovers' gaps: counted once per call, off the frame path."""
    bridge = call.bridge
    if bridge.reconnected:
        metrics.RECONNECTS.labels("reconnected").inc(bridge.reconnected)
    if ended.reason == EndReason.UPSTREAM_LOST and bridge.drops:
        metrics.RECONNECTS.labels("gave_up").inc()
    for gap in bridge.gaps:
        metrics.SILENT_GAP.observe(gap)


def record_of(call: TwilioCall, ended: EndCall, started_at: float, ended_at: float) -> dict:
    """The call as :func:`relay.call.notify.queue_summary` documents it (notes added later)."""
    bridge = call.bridge
    return {
        "call_sid": bridge.call_sid,
        "caller": other_party(bridge.params),
        "direction": "outbound" if is_outbound(bridge.params) else "inbound",
        "started_at": started_at,
        "ended_at": ended_at,
        "outcome": str(ended.reason),
        "lines": [list(line) for line in bridge.transcript.lines],
        "tool_calls": bridge.tool_calls_record(),
        "messages": [],
        "transfers": [dict(t) for t in bridge.transfers],
    }


def live_entry(call: TwilioCall) -> dict[str, Any]:
    """The call as the console lists it while it lasts (:mod:`common.live_calls`); empty
    until Twilio's ``start`` has said who is calling."""
    bridge = call.bridge
    if bridge.started_at_start is None or bridge.ended is not None:
        return {}  # not a call yet, or over (a refused stream is never listed)
    return {
        "call_sid": bridge.call_sid,
        "caller": other_party(bridge.params),
        "direction": "outbound" if is_outbound(bridge.params) else "inbound",
    }


def summary_wanted(cfg: Config) -> bool:
    return bool(cfg.staff_notify_to or cfg.staff_conversation_sid or cfg.voicemail_notify_to)


def after_call(cfg: Config, call: TwilioCall, ended: EndCall, started_at: float) -> None:
    """The greenlet: count, then queue the summary or the voicemail notice."""
    global _warned_no_destination
    ended_at = time.time()
    count_call(call, ended)
    bridge = call.bridge
    if not bridge.call_sid or ended.reason in NOT_SUMMARISED or bridge.started_at_start is None:
        return
    call.wait_for_actions(ACTION_WAIT_SECONDS)  # a text being sent is part of the record
    record = record_of(call, ended, started_at, ended_at)
    add_notes(cfg, record, wait=ended.reason == EndReason.TRANSFERRED)
    notify.queue_record(record)  # every call goes to the call log
    staff = bool(cfg.staff_notify_to or cfg.staff_conversation_sid)
    if bridge.voicemail and cfg.voicemail_notify_to and not staff:
        if ended.reason in VOICEMAIL_REASONS:  # a message nobody heard: no notice
            lines = list(bridge.transcript.lines)
            notify.queue_voicemail_notice(bridge.call_sid, bridge.params, ended.reason, lines)
        return
    if not summary_wanted(cfg):
        metrics.SUMMARIES.labels("no_destination").inc()
        if not _warned_no_destination:
            _warned_no_destination = True
            log.info(
                "no call summaries: STAFF_NOTIFY_TO, STAFF_CONVERSATION_SID and "
                "VOICEMAIL_NOTIFY_TO are all unset",
                extra={"call_sid": bridge.call_sid, "reason": "no_destination"},
            )
        return
    notify.queue_summary(record)


def add_notes(cfg: Config, record: dict[str, Any], wait: bool) -> None:
    """Messages taken, the transfer's result and a recorded message, from the call's notes.
    ``wait``: the call went to staff, whose answer (or not) Twilio reports after the ring."""
    call_sid = record["call_sid"]
    deadline = time.monotonic() + cfg.staff_transfer_timeout_seconds + 15.0
    notes = _notes(call_sid)
    while wait and not _kind(notes, "transfer") and time.monotonic() < deadline:
        gevent.sleep(POLL_SECONDS)
        notes = _notes(call_sid)
    status = next((n.get("status") for n in reversed(notes) if n.get("kind") == "transfer"), None)
    if wait and status is not None and status not in BRIDGED:
        deadline = time.monotonic() + RECORDING_WAIT_SECONDS
        while not _kind(notes, "recording") and time.monotonic() < deadline:
            gevent.sleep(POLL_SECONDS)
            notes = _notes(call_sid)
    for note in notes:
        kind = note.get("kind")
        if kind == "message":
            fields = ("name", "callback_number", "message")
            record["messages"].append({k: str(note.get(k) or "") for k in fields})
        elif kind == "recording":
            record["messages"].append(
                {"recorded_message": str(note.get("url") or ""), "seconds": note.get("duration")}
            )
    if wait:  # the redirect went through; what staff did is Twilio's DialCallStatus
        shown = status or "unknown (answered and still talking, or still ringing)"
        record["transfers"] = [{"to": cfg.staff_transfer_number, "status": shown}]


def _notes(call_sid: str) -> list[dict[str, Any]]:
    try:
        return call_keys.read_notes(get_redis(), call_sid)
    except redis.RedisError:
        log.warning("call notes unreadable (Redis)", extra={"call_sid": call_sid})
        return []


def _kind(notes: list[dict[str, Any]], kind: str) -> bool:
    return any(n.get("kind") == kind for n in notes)
