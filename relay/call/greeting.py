"""How a call opens (GA session, greeting) and how its opening response ended.

Every ``response.done`` carries ``response.status`` (``completed``, ``cancelled``,
``incomplete`` or ``failed``) and ``status_details``: ``{"type", "reason"}`` for a cancelled
or incomplete response, ``{"type": "failed", "error": {"type", "code", "message"}}`` for a
failed one (openai.types.realtime ``RealtimeResponseStatus``). A failed response (rate limit,
server error) produced nothing the caller heard, so the opening response (the greeting, or
the voicemail message) is asked for once more, and after a second failure the call takes the
apology path: a voicemail that was not spoken must never be reported as left.

Pure bookkeeping, like :mod:`relay.call.playback`; :class:`relay.call.bridge.TwilioBridge`
sends the messages.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING, Any

from common import prompts
from common.models import transcription
from relay.protocol import realtime
from relay.protocol.realtime import ResponseEnd

if TYPE_CHECKING:
    from relay.call.settings import BridgeSettings

log = logging.getLogger("relay.call.bridge")

#: How many times a failed opening response is asked for again.
RETRIES = 1


def instructions_of(s: BridgeSettings, tools: bool) -> str:
    """The call's prompt; a call with tools is also told when to use them."""
    base = s.instructions or prompts.voice_prompt()
    return base + prompts.TOOL_INSTRUCTIONS if tools else base


def session_update(
    s: BridgeSettings, voicemail: bool, tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The call's ``session.update``: μ-law both ways, VAD (none for a voicemail: the message
    is said once and the beep is not a turn), voice, prompt, the caller transcribed, and for a
    live call the function tools (:mod:`relay.call.tool_specs`)."""
    turn_detection = (
        None
        if voicemail
        else {"type": s.turn_detection, "create_response": True, "interrupt_response": True}
    )
    session = realtime.phone_session(
        model=s.model,
        instructions=instructions_of(s, bool(tools)),
        voice=s.voice,
        transcription=transcription(s.transcription_model, s.transcription_keywords),
        turn_detection=turn_detection,
        tools=tools,
    )
    return realtime.session_update(session)


#: Spoken first after a long reconnect gap, so the caller knows the silence was the line.
RECONNECT_NOTE = (
    "The phone line dropped for a moment and is back now. Start with a short "
    '"Sorry, one moment." and then carry on: finish what you were saying, or ask the caller '
    "to repeat what they said last."
)


def continue_response(s: BridgeSettings, apologise: bool, tools: bool = False) -> dict[str, Any]:
    """After a reconnect: finish the reply the drop cut, with a brief apology after a long gap.
    Response instructions replace the session's for that response, so they are repeated."""
    if not apologise:
        return realtime.response_create()
    return realtime.response_create(instructions_of(s, tools) + "\n\n" + RECONNECT_NOTE)


def greeting_item(kind: str) -> dict[str, Any]:
    """The user item the greeting (or voicemail message) answers."""
    return realtime.message("user", f'Greet the caller by saying: "{prompts.greeting(kind)}"')


class Verdict(Enum):
    """What the bridge does after the opening response ended."""

    SPOKEN = "spoken"  # it was said in full: carry on (a voicemail: wait for it to play)
    RETRY = "retry"  # OpenAI failed it: ask for it again
    GIVE_UP = "give_up"  # failed again: apologise and end the call
    DROPPED = "dropped"  # the bridge cancelled it itself (time cap): nothing to do


class Greeting:
    """The call's first response, from ``response.create`` to its ``response.done``."""

    def __init__(self, voicemail: bool):
        self.reset(voicemail)

    def reset(self, voicemail: bool) -> None:
        """A fresh opening (a call's ``start``, or a resumed call's)."""
        self.voicemail = voicemail
        self.attempts = 0
        self.response_id: str | None = None
        self.requested = False  # asked for; the next response.created is it
        self.spoken = False

    def asked(self) -> None:
        self.attempts += 1
        self.requested = True

    def on_created(self, response_id: str) -> None:
        if self.requested:
            self.requested = False
            self.response_id = response_id

    def on_upstream_lost(self, audible: bool) -> None:
        """The upstream died before the opening response ended. A caller who heard part of
        the greeting can talk; a voicemail message, or a greeting nobody heard, is asked for
        again by the next session."""
        self.response_id = None
        self.requested = False
        if audible and not self.voicemail:
            self.spoken = True

    def on_done(self, end: ResponseEnd, cancelled_by_us: bool) -> Verdict | None:
        """The verdict when ``end`` is the opening response, else None."""
        if self.response_id is None or end.id != self.response_id:
            return None
        self.response_id = None
        if cancelled_by_us:
            return Verdict.DROPPED
        # A voicemail counts only when complete: the machine records one take, unheard by
        # anyone who could ask again. A live caller who heard part of a greeting can talk.
        ok = end.status == "completed" if self.voicemail else end.status != "failed"
        if ok:
            self.spoken = True
            return Verdict.SPOKEN
        return Verdict.RETRY if self.attempts <= RETRIES else Verdict.GIVE_UP


def log_unfinished(end: ResponseEnd, ctx: dict[str, str]) -> None:
    """A failed response is an OpenAI fault worth an alert; a cut one is routine."""
    level = {"failed": logging.ERROR, "incomplete": logging.WARNING}.get(end.status, logging.INFO)
    log.log(
        level,
        "OpenAI response %s %s: %s %s",
        end.id,
        end.status or "(no status)",
        end.reason,
        end.message,
        extra={**ctx, "status": end.status, "reason": end.reason},
    )
