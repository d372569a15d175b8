"""The voice webhook: connect a call to the relay, and decide how it ends.

``/twilio/voice`` answers with ``<Connect action=…><Stream url="{RELAY_PUBLIC_URL}/token/{t}">``:
the token sits in the path because Twilio refuses a query string on ``<Stream url>``, and
everything else the relay needs travels as ``<Parameter>``s. When the stream closes, Twilio
requests the ``action`` URL: the relay has written to Redis why it ended the stream on purpose
(voicemail left, time cap, caller gone), and then the call simply hangs up; anything else (the
bridge failed, the relay crashed) gets a short apology instead of dead air.

Answering machine detection (``AnsweredBy``, outbound calls placed with ``MachineDetection``):
a machine (``machine_start`` from ``Enable``, ``machine_end_*`` from ``DetectMessageEnd``) gets
the voicemail message, a fax machine is hung up on at once (there is nobody to talk to and the
stream would run to the time cap), ``human``/``unknown`` get the normal conversation.
"""

from __future__ import annotations

import logging
from typing import Literal

import redis
from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from common import stats
from common.config import Config
from common.names import WEBHOOK_EVENTS, call_end_key
from common.redis_util import get_redis
from common.stream_twiml import connect_stream, stream_parameters, stream_token
from webhooks.security import twilio_signed

log = logging.getLogger(__name__)

EVENTS = WEBHOOK_EVENTS
bp = Blueprint("voice", __name__)

APOLOGY = (
    "Sorry, our assistant is having trouble right now. Please call again in a few minutes, "
    "or send us a text at this number. Goodbye."
)
UNAVAILABLE = "Sorry, our assistant is not available right now. Please call again later. Goodbye."
#: AnsweredBy values meaning an answering machine: the relay leaves a voicemail (it reads the
#: ``amd`` parameter). Twilio: https://www.twilio.com/docs/voice/answering-machine-detection
MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other"}
)
FAX = "fax"


def direction_for(cfg: Config, from_: str, to: str) -> str:
    """Outbound when the call is from our number, inbound when to it."""
    if from_ == cfg.bot_projected_address:
        return "outbound"
    if to == cfg.bot_projected_address:
        return "inbound"
    return "unknown"


def answer_mode(answered_by: str) -> Literal["fax", "voicemail", "live"]:
    """``fax``, ``voicemail`` or ``live`` (human, unknown, or no detection at all)."""
    if answered_by == FAX:
        return "fax"
    return "voicemail" if answered_by in MACHINE_ANSWERS else "live"


def _twiml(vr: VoiceResponse) -> Response:
    return Response(str(vr), mimetype="text/xml")


@bp.route("/twilio/voice", methods=["GET", "POST"])
@twilio_signed
def voice() -> Response:
    cfg: Config = current_app.extensions["gateframes_config"]
    values = request.values
    call_sid = values.get("CallSid", "")
    vr = VoiceResponse()
    if not cfg.relay_public_url or not cfg.encryption_key:
        log.error(
            "voice webhook cannot connect calls: RELAY_PUBLIC_URL or ENCRYPTION_KEY unset",
            extra={"call_sid": call_sid, "reason": "misconfigured"},
        )
        vr.say(UNAVAILABLE)
        vr.hangup()
        stats.incr(EVENTS, "voice", "misconfigured")
        return _twiml(vr)
    answered_by = values.get("AnsweredBy", "")
    mode = answer_mode(answered_by)
    if mode == "fax":
        log.info("fax machine answered; hanging up", extra={"call_sid": call_sid, "reason": FAX})
        vr.hangup()
        stats.incr(EVENTS, "voice", FAX)
        return _twiml(vr)
    # Bound to this call: the relay refuses a stream whose start.callSid is another call's.
    token = stream_token(cfg, call_sid)
    direction = direction_for(cfg, values.get("From", ""), values.get("To", ""))
    params = stream_parameters(
        answered_by=answered_by,
        direction=direction,
        call_sid=call_sid,
        from_=values.get("From", ""),
        to=values.get("To", ""),
    )
    connect_stream(cfg, token, params, vr)
    outcome = "voicemail" if mode == "voicemail" else direction
    log.info("call connecting to relay", extra={"call_sid": call_sid, "outcome": outcome})
    stats.incr(EVENTS, "voice", "connected_" + outcome)
    return _twiml(vr)


@bp.route("/twilio/voice/after", methods=["GET", "POST"])
@twilio_signed
def after_stream() -> Response:
    """Twilio asks what next once the stream has closed."""
    call_sid = request.values.get("CallSid", "")
    reason = None
    if call_sid:
        try:
            reason = get_redis().get(call_end_key(call_sid))
        except redis.RedisError:
            reason = None  # cannot tell: apologising is kinder than silence
    vr = VoiceResponse()
    stats.incr(EVENTS, "voice_after", "hangup" if reason else "apology")
    if reason:
        log.info("call ended by the assistant", extra={"call_sid": call_sid, "reason": reason})
    else:
        log.warning(
            "stream ended unexpectedly; apologising to the caller",
            extra={"call_sid": call_sid, "reason": "bridge_failed"},
        )
        vr.say(APOLOGY)
    vr.hangup()
    return _twiml(vr)
