"""Names two processes must agree on, in one place.

The web process, the worker and the relay meet only through Redis, tokens, metrics and the
texts they send; a name spelled twice drifts. Redis keys are built by
:func:`common.redis_util.key` from the parts below.
"""

from __future__ import annotations

# -- token origins (the ``origin`` claim; the app server mints ``client``) ---------------
BROWSER_ORIGIN = "client"
TWILIO_ORIGIN = "twilio"

# -- Redis key parts ----------------------------------------------------------------------
#: ``key(CALL_END, call_sid)``: why the relay ended a stream on purpose, a
#: :class:`common.end_reasons.EndReason` value (read by the web process when Twilio asks what
#: comes after the stream).
CALL_END = "call_end"
#: ``key(CALL_TRANSCRIPT, call_sid)``: the pub/sub channel of a live call's transcript lines.
CALL_TRANSCRIPT = "call_transcript"


#: ``key(LIVE_CALLS)``: sorted set of the calls in progress (member CallSid, score the epoch
#: second its entry expires), written by the relay (:mod:`common.live_calls`), read by the
#: staff console. ``key(LIVE_CALL, call_sid)``: that call's JSON details, with the same TTL.
LIVE_CALLS = "live_calls"
LIVE_CALL = "live_call"
#: ``key(TAKEOVER, conversation_sid)``: JSON ``{"by", "at"}`` while a staff member holds the
#: thread (written by the console, read by the worker, which then stays silent); it expires
#: TAKEOVER_IDLE_MINUTES after the last staff message.
TAKEOVER = "takeover"


def takeover_key(conversation_sid: str) -> str:
    """``gf:takeover:<ConversationSid>``: the console writes it, the worker obeys it."""
    from common.redis_util import key

    return key(TAKEOVER, conversation_sid)


def call_end_key(call_sid: str) -> str:
    """``gf:call_end:<CallSid>``: written by the relay, read by the web's after-stream route."""
    from common.redis_util import key  # here: redis_util reads the config, names must not

    return key(CALL_END, call_sid)


def call_transcript_channel(call_sid: str) -> str:
    """``gf:call_transcript:<CallSid>``: the relay publishes live transcript lines here."""
    from common.redis_util import key

    return key(CALL_TRANSCRIPT, call_sid)


# -- metrics ----------------------------------------------------------------------------------
# Series kept in Redis (:mod:`common.stats`): written by web processes or workers, exported by
# the web's ``/metrics``.
#: ``gateframes_webhook_events_total{route, outcome}``, counted by web processes through Redis.
WEBHOOK_EVENTS = "gateframes_webhook_events"
#: ``gateframes_task_runs_total{task, outcome}``: Celery task runs, counted by the workers.
TASK_RUNS = "gateframes_task_runs"
#: ``gateframes_task_retries_total{task}``: retries the workers scheduled.
TASK_RETRIES = "gateframes_task_retries"
#: ``gateframes_task_seconds{task}`` (``_count``, ``_sum``): how long task runs took.
TASK_SECONDS = "gateframes_task_seconds"
#: The ``route`` label of each signature-checked view (Flask endpoint → label), so a refusal
#: (counted by the signature check) lands under the same label as the view's own outcomes.
WEBHOOK_ROUTES = {
    "convo.convo_event": "convo",
    "voice.voice": "voice",
    "voice.after_stream": "voice_after",
}


def webhook_route(endpoint: str | None, blueprint: str | None = None) -> str:
    """The ``route`` label for a Flask endpoint (its blueprint's name when not listed)."""
    return WEBHOOK_ROUTES.get(endpoint or "", blueprint or endpoint or "unknown")


# -- calls ------------------------------------------------------------------------------------
#: ``DialCallStatus`` values meaning the caller talked to staff (the ``<Dial>`` bridged): read by
#: the web's after-Dial route and by the relay's after-call work.
BRIDGED = frozenset({"completed", "answered"})


# -- texts ------------------------------------------------------------------------------------
#: Twilio refuses longer SMS bodies (21617) and Conversations message bodies.
SMS_MAX_CHARS = 1600
#: Dropped before the ellipsis of a cut text: whitespace and clause punctuation.
_TRAILING = " \t\r\n\f\v,;:"


def fit_sms(text: str, limit: int = SMS_MAX_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters for an SMS body: when cut, at the last word
    boundary in its second half (else mid-word), trailing ``,;:`` dropped, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(_TRAILING) + "…"
