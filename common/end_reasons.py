"""Why a relay session ended: one vocabulary for the relay, the web process and the workers.

The values are stored and read across processes: the relay writes a deliberate call end under
:func:`common.names.call_end_key` (the web's ``/twilio/voice/after`` hangs up when it finds one,
apologises when not), the after-call summary carries it as ``outcome`` and the voicemail
notice as ``reason``, and it is the ``reason`` label of ``relay_sessions_total`` and of the
relay's end-of-session log line. So a value is never renamed; a ``StrEnum`` member compares
and serialises as its string.
"""

from __future__ import annotations

from enum import StrEnum


class EndReason(StrEnum):
    # -- phone calls, deliberate: the caller hears a plain hang-up -------------------------
    CALLER_HUNG_UP = "caller_hung_up"  # Twilio's ``stop``
    ASSISTANT_HUNG_UP = "assistant_hung_up"  # the end_call tool, after its goodbye played
    TRANSFERRED = "transferred"  # the redirect to staff took the call
    VOICEMAIL_LEFT = "voicemail_left"  # the whole message played to the machine
    VOICEMAIL_TIMEOUT = "voicemail_timeout"  # said in full, the machine never let it finish
    TIME_LIMIT = "time_limit"  # the time-cap goodbye played (browser: the cap itself)
    TWILIO_CLOSED = "twilio_closed"  # Twilio's socket closed without a ``stop``
    # -- phone calls, failures: the caller hears the apology -------------------------------
    HANDED_OVER = "handed_over"  # moved to another relay; the new stream decides the end
    CALL_SID_MISMATCH = "call_sid_mismatch"  # the stream is not the token's call
    GREETING_FAILED = "greeting_failed"
    VOICEMAIL_FAILED = "voicemail_failed"
    GOODBYE_FAILED = "goodbye_failed"
    UPSTREAM_LOST = "upstream_lost"  # OpenAI gone and reconnecting gave up (browser: too)
    TWILIO_STALLED = "twilio_stalled"  # Twilio stopped reading the audio we sent
    SERVER_SHUTDOWN = "server_shutdown"  # the relay stopped and the call could not move
    RELAY_ERROR = "relay_error"  # the session ended without saying why (a bug)
    # -- browser sessions (their close reason; protocol errors keep the codec's word) -----
    BROWSER_CLOSED = "browser_closed"
    IDLE_TIMEOUT = "idle_timeout"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # OpenAI could not be reached
    UPSTREAM_CLOSED = "upstream_closed"  # OpenAI closed normally (``upstream_closed_<code>``)
    SERVICE_RESTART = "service_restart"  # SIGTERM: the page reconnects to another relay


#: The voicemail ends worth a notice: the message was said in full.
VOICEMAIL_REASONS = frozenset({EndReason.VOICEMAIL_LEFT, EndReason.VOICEMAIL_TIMEOUT})
