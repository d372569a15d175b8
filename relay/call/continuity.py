"""Calls that survive: the bridge's decisions when OpenAI drops, and when a relay hands a call
to another relay process (a mixin of :class:`relay.call.bridge.TwilioBridge`, kept apart so
the bridge module stays about the call itself).

* **Upstream drop.** The reply under way is kept as far as it was generated (its audio is
  already in Twilio's buffer and keeps playing), caller audio in the gap is dropped, and a
  :class:`relay.call.reconnect.Reconnect` asks the driver to dial again. The new session gets the
  same ``session.update``, the conversation replayed (:mod:`relay.call.replay`) and, if a reply was
  cut, a ``response.create`` to finish it; after a gap over 1.5 s that response starts with a
  short "Sorry, one moment". Only when the attempts run out does the call end (the apology).
* **Handover.** :meth:`Continuity.hand_over` freezes the call and returns its state for
  Redis; the stream Twilio ends next is ``handed_over`` (no end reason recorded, so nothing is
  said). On the new relay the stream's ``resume`` parameter yields a
  :class:`relay.call.handover.LoadResume`; :meth:`Continuity.on_resume` restores the call (the time
  cap still counts from the call's start) and carries on without a greeting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from common.end_reasons import EndReason
from relay.call.greeting import Greeting, continue_response, greeting_item
from relay.call.handover import CallState
from relay.call.outputs import EndCall, ToOpenAI
from relay.call.reconnect import APOLOGY_GAP_SECONDS, Reconnects
from relay.call.replay import History
from relay.call.replay import items as replay_items

if TYPE_CHECKING:
    from relay.call.outputs import BridgeSettings, Output, Transcript
    from relay.call.playback import PlaybackTracker

log = logging.getLogger("relay.call.bridge")

HANDOVER_CUT = "cut by a relay handover"


class Continuity:
    # The bridge's state this mixin reads and writes (see TwilioBridge.__init__).
    s: BridgeSettings
    call_sid: str
    bound: bool
    kind: str
    voicemail: bool
    params: dict[str, str]
    started_at: float
    started_at_start: float | None
    ended: object | None
    greeting: Greeting
    history: History
    transcript: Transcript
    playback: PlaybackTracker
    reconnects: Reconnects
    gaps: list[float]
    reconnected: int  # upstreams reopened after a drop (relay_upstream_reconnects_total)
    drops: int  # upstreams lost mid-call
    _upstream_open: bool
    _pending_upstream: list[str]
    _active_response: str | None
    _discarded: set[str]
    _said_so_far: dict[str, str]
    _heard: dict[str, float]
    _cut_off: dict[str, str]
    _stale_items: set[str]
    _phase: str
    _continue: bool
    _awaiting_resume: bool
    _voicemail_deadline: float | None
    tools: object | None  # relay.call.tools.ToolBox (relay.call.tool_flow)

    # Provided by TwilioBridge.
    def _openai(self, out: list[Output], obj: dict | str) -> None: ...
    def _end(
        self, out: list[Output], reason: EndReason, deliberate: bool, code: int = 1000
    ) -> None: ...
    def end(self, reason: EndReason, deliberate: bool = False, code: int = 1000) -> EndCall: ...
    def _assistant_said(self, response_id: str, text: object) -> None: ...
    def _ask_for_greeting(self, out: list[Output]) -> None: ...
    def _say_goodbye(self, out: list[Output], now: float) -> None: ...
    def _log_ctx(self) -> dict[str, str]: ...

    if TYPE_CHECKING:  # real in relay.call.tool_flow.ToolCalls: a stub here would shadow it

        def _session_update(self) -> dict: ...

    def _gap(self) -> bool:
        """No upstream to talk to (a reconnect, or a resumed call still loading)."""
        return self.reconnects.in_gap or self._awaiting_resume

    # -- upstream lifecycle -----------------------------------------------------------------
    def on_upstream_open(self, now: float) -> list[Output]:
        """Flush what Twilio sent before OpenAI answered, in order. A session opened after a
        drop first gets the call's configuration and conversation back."""
        reopened = self.reconnects.opened_at is not None
        gap = self.reconnects.opened(now)
        self._upstream_open = True
        out: list[Output] = []
        if reopened and gap is not None and self.started_at_start is not None:
            self.gaps.append(gap)
            self.reconnected += 1
            log.info(
                "OpenAI Realtime reconnected after %d ms; replaying %d turns",
                gap * 1000,
                len(self.history.turns),
                extra={**self._log_ctx(), "outcome": "reconnected"},
            )
            self._restore(out, now, gap)
        out += [ToOpenAI(t) for t in self._pending_upstream]
        self._pending_upstream.clear()
        return out

    def on_upstream_closed(self, now: float) -> list[Output]:
        """The upstream socket died, or an attempt to open one failed: try again (a
        :class:`relay.call.reconnect.Reconnect`) while the allowance lasts, else end the call."""
        out: list[Output] = []
        if self.ended is not None or self._phase == "handover":
            return out  # a handover closes the upstream on purpose
        if self._upstream_open:
            self._upstream_open = False
            self.drops += 1
            self._on_drop()
        attempt = self.reconnects.next(now)
        if attempt is None:
            self._end(out, EndReason.UPSTREAM_LOST, deliberate=False)
        else:
            out.append(attempt)
        return out

    def _on_drop(self) -> None:
        rid = self._active_response
        if rid is not None:
            self._active_response = None
            audible = any(i.response_id == rid for i in self.playback.items.values())
            if rid == self.greeting.response_id or self.greeting.requested:
                self.greeting.on_upstream_lost(audible)
            if audible and self._phase == "talking" and not self.voicemail:
                self._assistant_said(rid, self._said_so_far.get(rid, ""))
                self._continue = True
            self._discarded.add(rid)
        elif self.greeting.requested:
            self.greeting.on_upstream_lost(False)
        if self._phase == "goodbye":
            self._phase = "goodbye_pending"
        self._stale_items.update(self.playback.items)

    def _restore(self, out: list[Output], now: float, gap: float) -> None:
        """The same session, the conversation so far, then whatever was under way."""
        self._openai(out, self._session_update())
        for item in replay_items(self.history):
            self._openai(out, item)
        if not self.greeting.spoken and not self.greeting.requested:
            self._openai(out, greeting_item(self.kind))
            self._ask_for_greeting(out)
        elif self._phase == "goodbye_pending":
            self._say_goodbye(out, now)
        elif self._phase == "talking" and (self._continue or gap > APOLOGY_GAP_SECONDS):
            apologise, tools = gap > APOLOGY_GAP_SECONDS, self.tools is not None
            self._openai(out, continue_response(self.s, apologise, tools))
        self._continue = False

    # -- handover ---------------------------------------------------------------------------
    def hand_over(self, now: float) -> CallState | None:
        """Freeze the call for another relay; its state, or None if it cannot move (not
        started, not bound to a call, already ending)."""
        if (
            self.ended is not None
            or self.started_at_start is None
            or not self.bound
            or self._awaiting_resume
            or self._phase not in ("talking", "goodbye_pending", "goodbye")
        ):
            return None
        rid, carry_on = self._active_response, False
        if rid is not None and self._phase == "talking" and not self.voicemail:
            # Twilio drops its buffer when the call moves: only what played so far was heard.
            self._heard[rid] = self.playback.heard_fraction(rid, now)
            self._cut_off[rid] = HANDOVER_CUT
            self._assistant_said(rid, self._said_so_far.get(rid, ""))
            carry_on = True
        self._phase = "handover"
        return CallState(
            call_sid=self.call_sid,
            kind=self.kind,
            voicemail=self.voicemail,
            params={k: v for k, v in self.params.items() if k != "resume"},
            used_s=now - self.started_at,
            lines=list(self.transcript.lines),
            turns=self.history.to_json(),
            # A voicemail starts again from the top: the machine lost what was playing.
            greeting_spoken=self.greeting.spoken and not self.voicemail,
            continue_reply=carry_on,
        )

    def on_twilio_closed(self) -> EndCall:
        """Twilio's socket closed: the call ends (unless a ``stop`` or the bridge ended it
        first). After a handover that is the move (no end reason may be recorded: the new
        stream decides how the call ends). The end that stands is returned."""
        if self._phase == "handover":
            return self.end(EndReason.HANDED_OVER, deliberate=False)
        return self.end(EndReason.TWILIO_CLOSED, deliberate=True)

    def on_handover_failed(self) -> list[Output]:
        """The redirect did not happen: end the call as a shutdown did before (the apology)."""
        out: list[Output] = []
        self._end(out, EndReason.SERVER_SHUTDOWN, deliberate=False)
        return out

    def on_resume(self, state: CallState | None, now: float, gap: float) -> list[Output]:
        """The saved state of a call another relay handed over (None: expired or claimed)."""
        out: list[Output] = []
        self._awaiting_resume = False
        if self.ended is not None:
            return out
        if state is None:
            log.warning(
                "resumed stream without saved state; carrying on without the transcript",
                extra={**self._log_ctx(), "reason": "resume_state_missing"},
            )
            self.greeting.spoken = True  # the call is under way: no second greeting
        else:
            self.kind, self.voicemail = state.kind, state.voicemail
            self.started_at = now - state.used_s
            self.transcript.lines = [tuple(line) for line in state.lines]
            self.history = History.from_json(state.turns)
            self.greeting = Greeting(self.voicemail)
            self.greeting.spoken = state.greeting_spoken
            self._continue = state.continue_reply
            if self.voicemail:  # as on a first start: never hold a machine's line forever
                self._voicemail_deadline = now + self.s.goodbye_fallback_s + 40.0
            self.gaps.append(gap)
            log.info(
                "call resumed from another relay after %d ms: %d turns, %.0f s used",
                gap * 1000,
                len(self.history.turns),
                state.used_s,
                extra={**self._log_ctx(), "outcome": "resumed"},
            )
        self._restore(out, now, gap)
        return out
