"""What a finished relay session reports, and the one place it is recorded.

Phone calls (:class:`relay.call.session.TwilioCall`) and browser sessions
(:class:`relay.browser.session.BrowserSession`) both return a :class:`SessionSummary` from
``run()``; the server hands it to :func:`record`, which adds it to the metrics and writes the
session's end line. The sessions count in plain ints while they run, so the frame path pays nothing
for this (see :mod:`relay.metrics`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from common.end_reasons import EndReason
from common.names import TWILIO_ORIGIN
from relay import metrics

#: A phone call (Twilio Media Streams) or a website visitor's browser session.
Kind = Literal["phone", "browser"]
#: The ``surface`` label of each kind: the token origin that opens it, and the browser's.
SURFACES: dict[Kind, str] = {"phone": TWILIO_ORIGIN, "browser": "browser"}
#: The end lines keep the loggers they always had (log drains filter on them).
_LOGS = {
    "phone": logging.getLogger("relay.call.session"),
    "browser": logging.getLogger("relay.browser.session"),
}


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session, as it ended. Plain values only, so it is safe to keep and test."""

    kind: Kind
    #: The call SID (phone; "" for a stream never bound to a call) or the browser session id.
    session_id: str
    #: An :class:`EndReason`; a browser close caused by the peer keeps the wire's word (the
    #: codec's ``bad_fragment``, ``upstream_closed_1011``, the queue-overflow sentence).
    reason: EndReason | str
    #: A phone end the caller hears as a plain hang-up (no apology); False for browsers.
    deliberate: bool
    close_code: int
    #: This session's life on this relay (``relay_session_seconds``).
    duration_s: float
    #: What the end line reports: for a call, its length so far, counting the time on a relay
    #: that handed it over; for a browser, ``duration_s``.
    elapsed_s: float
    frames_in: int  # to OpenAI
    frames_out: int  # from OpenAI
    #: Frames skipped as unusable (phone: not a JSON object, or the bridge could not use it).
    malformed: int = 0
    #: Media Streams messages the bridge refused (non-base64 payloads, repeated starts).
    bad_media: int = 0
    transcript_lines: int = 0
    caller_lines: int = 0
    barge_ins: int = 0
    #: Browser events the owned policy stripped or refused.
    policed: int = 0
    stream_sid: str = ""
    client_ip: str = ""

    @property
    def surface(self) -> str:
        return SURFACES[self.kind]

    @property
    def label(self) -> str:
        """The ``reason`` label: ``upstream_closed_<code>`` counts as ``upstream_closed``."""
        if self.reason.startswith(EndReason.UPSTREAM_CLOSED):
            return EndReason.UPSTREAM_CLOSED
        return self.reason


def record(summary: SessionSummary) -> None:
    """Count the session once, then write its end line (the ``extra`` fields tests and log
    drains filter on: ``call_sid``/``stream_sid``/``reason``/``outcome`` for a call,
    ``session_id``/``client_ip``/``reason`` for a browser)."""
    surface = summary.surface
    metrics.SESSIONS.labels(surface, summary.label).inc()
    metrics.DURATION.labels(surface).observe(summary.duration_s)
    metrics.FRAMES.labels(surface, "in").inc(summary.frames_in)
    metrics.FRAMES.labels(surface, "out").inc(summary.frames_out)
    if summary.kind == "phone":
        metrics.BARGE_INS.inc(summary.barge_ins)
        _log_call(summary)
    else:
        if summary.policed:
            metrics.POLICY_REFUSALS.inc(summary.policed)
        _log_browser(summary)


def _log_call(s: SessionSummary) -> None:
    skipped = s.malformed + s.bad_media
    _LOGS["phone"].info(
        "call ended (%s) after %.1f s: %d transcript lines (%d caller, %d assistant)%s",
        "deliberate" if s.deliberate else s.reason.replace("_", " "),
        s.elapsed_s,
        s.transcript_lines,
        s.caller_lines,
        s.transcript_lines - s.caller_lines,
        f"; {s.malformed} malformed frames, {s.bad_media} bad media" if skipped else "",
        extra={
            "call_sid": s.session_id,
            "stream_sid": s.stream_sid,
            "reason": s.reason,
            "outcome": s.reason,
        },
    )


def _log_browser(s: SessionSummary) -> None:
    _LOGS["browser"].info(
        "browser session ended after %.1f s (%d in, %d out, %d policed, close %d)",
        s.elapsed_s,
        s.frames_in,
        s.frames_out,
        s.policed,
        s.close_code,
        extra={"session_id": s.session_id, "client_ip": s.client_ip, "reason": s.reason},
    )
