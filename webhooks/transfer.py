"""Transfer to staff: the TwiML Twilio fetches after the relay redirects a live call.

1. The relay (``relay.call.actions.transfer``) keeps the caller's number and reason in Redis
   (``common.call_keys``) and redirects the call to ``POST /twilio/voice/transfer``, which dials
   ``STAFF_TRANSFER_NUMBER`` from the bot number (``<Dial callerId>`` must be one of our
   numbers, so the caller's number is spoken in the whisper instead).
2. When staff answer, Twilio fetches ``/twilio/voice/whisper`` for the staff leg only: who is
   calling and why. The reason is never in the caller's TwiML.
3. ``/twilio/voice/transfer/after`` gets ``DialCallStatus``: a bridged call simply hangs up;
   no answer, busy, failed or canceled get an apology and ``<Record>``, never silence, and
   ``/twilio/voice/message`` keeps the recording's URL for the call summary.

The assistant has already told the caller it is connecting them, so there is no ``<Say>``
before the ``<Dial>`` (the caller hears ringing).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

import redis
from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from common import call_keys, stats
from common.config import Config
from common.names import BRIDGED, WEBHOOK_EVENTS
from common.redis_util import get_redis
from webhooks.security import twilio_signed

log = logging.getLogger(__name__)

EVENTS = WEBHOOK_EVENTS
bp = Blueprint("transfer", __name__)

NO_ANSWER = (
    "Sorry, nobody could take your call right now. Please leave a message after the tone, "
    "and a GateFrames team member will call you back. Press any key when you are done."
)
THANKS = "Thank you, we got your message. A GateFrames team member will call you back. Goodbye."
NOTHING_RECORDED = "We did not get a message. Please call again or text this number. Goodbye."
RECORD_MAX_SECONDS = 120
_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")


def _twiml(vr: VoiceResponse) -> Response:
    return Response(str(vr), mimetype="text/xml")


def _cfg() -> Config:
    return current_app.extensions["gateframes_config"]


def spoken_number(number: str) -> str:
    """``+14155550100`` as ``4 1 5, 5 5 5, 0 1 0 0``: read digit by digit, not as a sum."""
    digits = re.sub(r"\D", "", number)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return " ".join(digits) or "an unknown number"
    return ", ".join(" ".join(part) for part in (digits[:3], digits[3:6], digits[6:]))


def _transfer_info(call_sid: str) -> dict[str, str]:
    if not _CALL_SID.match(call_sid):
        return {"caller": "", "reason": ""}
    try:
        return call_keys.load_transfer(get_redis(), call_sid)
    except redis.RedisError:
        log.warning("transfer details unreadable (Redis)", extra={"call_sid": call_sid})
        return {"caller": "", "reason": ""}


def _note(call_sid: str, kind: str, **fields: str) -> None:
    if not _CALL_SID.match(call_sid):
        return
    try:
        call_keys.add_note(get_redis(), call_sid, kind, **fields)
    except redis.RedisError:
        log.warning("call note not stored (Redis)", extra={"call_sid": call_sid, "kind": kind})


def _leave_a_message(vr: VoiceResponse, cfg: Config) -> None:
    vr.say(NO_ANSWER)
    vr.record(
        max_length=RECORD_MAX_SECONDS,
        play_beep=True,
        action=cfg.public_base_url + "/twilio/voice/message",
        method="POST",
    )
    # <Record> goes on to the next verb when nothing was recorded.
    vr.say(NOTHING_RECORDED)
    vr.hangup()


@bp.route("/twilio/voice/transfer", methods=["POST"])
@twilio_signed
def transfer() -> Response:
    cfg = _cfg()
    call_sid = request.values.get("CallSid", "")
    vr = VoiceResponse()
    if not cfg.staff_transfer_number:
        log.error(
            "transfer requested but STAFF_TRANSFER_NUMBER is unset", extra={"call_sid": call_sid}
        )
        stats.incr(EVENTS, "voice_transfer", "not_configured")
        _leave_a_message(vr, cfg)
        return _twiml(vr)
    dial = vr.dial(
        caller_id=cfg.bot_projected_address,
        timeout=cfg.staff_transfer_timeout_seconds,
        action=cfg.public_base_url + "/twilio/voice/transfer/after",
        method="POST",
        answer_on_bridge=True,
    )
    # The parent call names the Redis entry; the query is part of what Twilio signs.
    whisper = cfg.public_base_url + "/twilio/voice/whisper?" + urlencode({"call": call_sid})
    dial.number(cfg.staff_transfer_number, url=whisper, method="POST")
    log.info("dialling staff", extra={"call_sid": call_sid, "outcome": "dialling"})
    stats.incr(EVENTS, "voice_transfer", "dialling")
    return _twiml(vr)


@bp.route("/twilio/voice/whisper", methods=["POST"])
@twilio_signed
def whisper() -> Response:
    """Played to staff only, before the calls are bridged."""
    parent = request.args.get("call", "")
    info = _transfer_info(parent)
    caller = info["caller"]
    about = info["reason"] or "no reason given"
    vr = VoiceResponse()
    vr.say(
        f"GateFrames call transfer from the A.I. assistant. Call from {spoken_number(caller)}, "
        f"about: {about}."
    )
    stats.incr(EVENTS, "voice_whisper", "played")
    return _twiml(vr)


@bp.route("/twilio/voice/transfer/after", methods=["POST"])
@twilio_signed
def transfer_after() -> Response:
    cfg = _cfg()
    call_sid = request.values.get("CallSid", "")
    status = request.values.get("DialCallStatus", "")[:20]
    _note(call_sid, "transfer", status=status)
    vr = VoiceResponse()
    ctx = {"call_sid": call_sid, "outcome": status or "unknown"}
    if status in BRIDGED:
        log.info("transfer to staff finished", extra=ctx)
        vr.hangup()
    else:
        log.warning("staff did not take the transfer; offering a message", extra=ctx)
        _leave_a_message(vr, cfg)
    stats.incr(EVENTS, "voice_transfer_after", "bridged" if status in BRIDGED else "message")
    return _twiml(vr)


@bp.route("/twilio/voice/message", methods=["POST"])
@twilio_signed
def message() -> Response:
    values = request.values
    call_sid = values.get("CallSid", "")
    url = values.get("RecordingUrl", "")
    if url.startswith("https://") and len(url) <= 500:
        duration = values.get("RecordingDuration", "")[:10]
        _note(
            call_sid,
            "recording",
            url=url,
            duration=duration,
            recording_sid=values.get("RecordingSid", "")[:40],
        )
        log.info(
            "message recorded for staff: %s (%s s)",
            url,
            duration,
            extra={"call_sid": call_sid, "outcome": "recorded"},
        )
        stats.incr(EVENTS, "voice_message", "recorded")
    else:
        log.warning("message webhook without a recording", extra={"call_sid": call_sid})
        stats.incr(EVENTS, "voice_message", "no_recording")
    vr = VoiceResponse()
    vr.say(THANKS)
    vr.hangup()
    return _twiml(vr)
