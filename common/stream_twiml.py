"""The TwiML that connects a call to the relay: ``/twilio/voice`` and the relay's handover
(:mod:`relay.call.handover`) build it the same way.

``<Connect action=PUBLIC_BASE_URL/twilio/voice/after><Stream url=RELAY_PUBLIC_URL/token/<t>>``:
the token sits in the path because Twilio refuses a query string on ``<Stream url>``; the rest
travels as ``<Parameter>``s. The token is bound to the call, so the relay refuses a stream
whose ``start.callSid`` is another call's.
"""

from __future__ import annotations

from enum import StrEnum

from twilio.twiml.voice_response import Connect, VoiceResponse

from common.config import Config
from common.names import TWILIO_ORIGIN
from common.tokens import mint

#: Long enough for Twilio to open the stream, short enough to be useless if leaked.
STREAM_TOKEN_TTL_SECONDS = 120
#: Twilio: each <Parameter> name + value must stay under 500 characters.
PARAMETER_MAX_CHARS = 499


class Param(StrEnum):
    """The stream's ``<Parameter>`` names: what ``/twilio/voice`` and a hand-over put on the
    stream and the relay reads back from ``start.customParameters`` (the one definition)."""

    #: Twilio's ``AnsweredBy`` (answering-machine detection on an ``@call``).
    AMD = "amd"
    #: ``inbound`` or ``outbound`` (our ``@call``).
    DIRECTION = "direction"
    CALL_SID = "callSid"
    FROM = "from"
    TO = "to"
    #: Set by a hand-over only: the key of the call's saved state.
    RESUME = "resume"


def stream_parameters(
    *, answered_by: str, direction: str, call_sid: str, from_: str, to: str
) -> dict[str, str]:
    """The ``<Parameter>``s of a new call's stream."""
    return {
        Param.AMD: answered_by,
        Param.DIRECTION: direction,
        Param.CALL_SID: call_sid,
        Param.FROM: from_,
        Param.TO: to,
    }


def call_kind(params: dict[str, str]) -> str:
    """``voicemail`` (a machine answered), ``inbound``, ``outbound`` or ``unknown``."""
    if "machine" in (params.get(Param.AMD) or "").lower():
        return "voicemail"
    direction = (params.get(Param.DIRECTION) or "").lower()
    return direction if direction in ("inbound", "outbound") else "unknown"


def is_outbound(params: dict[str, str]) -> bool:
    return (params.get(Param.DIRECTION) or "").lower().startswith("outbound")


def other_party(params: dict[str, str]) -> str:
    """The number at the other end: ``to`` on an outbound call (our ``@call``), else ``from``."""
    return params.get(Param.TO if is_outbound(params) else Param.FROM) or ""


def stream_token(cfg: Config, call_sid: str) -> str:
    return mint(
        cfg.encryption_key, TWILIO_ORIGIN, ttl_seconds=STREAM_TOKEN_TTL_SECONDS, call_sid=call_sid
    )


def connect_stream(
    cfg: Config, token: str, params: dict[str, str], vr: VoiceResponse | None = None
) -> VoiceResponse:
    """``vr`` (or a new response) with the ``<Connect><Stream>`` verb appended."""
    vr = vr if vr is not None else VoiceResponse()
    connect = Connect(action=cfg.public_base_url + "/twilio/voice/after")
    stream = connect.stream(url=f"{cfg.relay_public_url}/token/{token}")
    for name, value in params.items():
        if value:
            stream.parameter(name=name, value=value[: PARAMETER_MAX_CHARS - len(name)])
    vr.append(connect)
    return vr
