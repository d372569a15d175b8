"""Calls that survive: what the bridge does when OpenAI drops, and when a relay hands a call to
another relay process. One :class:`Continuity` per call, owned by
:class:`relay.call.bridge.TwilioBridge`.

* **Upstream drop.** The reply under way is kept as far as it was generated (its audio is
  already in Twilio's buffer and keeps playing), caller audio in the gap is dropped, and a
  :class:`relay.call.reconnect.Reconnect` asks the driver to dial again. The new session gets
  the same ``session.update``, the conversation replayed (:mod:`relay.call.replay`) and, if a
  reply was cut, a ``response.create`` to finish it; after a gap over 1.5 s that response
  starts with a short "Sorry, one moment". Only when the attempts run out does the call end
  (the apology).
* **Handover.** :meth:`Continuity.hand_over` freezes the call and returns its state for
  Redis; the stream Twilio ends next is ``handed_over`` (no end reason recorded, so nothing is
  said). On the new relay the stream's ``resume`` parameter yields a
  :class:`relay.call.handover.LoadResume`; :meth:`Continuity.on_resume` restores the call (the
  time cap still counts from the call's start) and carries on without a greeting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.end_reasons import EndReason
from relay.call.greeting import Greeting, continue_response, greeting_item
from relay.call.handover import CallState
from relay.call.info import CallInfo
from relay.call.ledger import ResponseLedger
from relay.call.link import UpstreamLink
from relay.call.outputs import CallEnd, Output, to_openai
from relay.call.phase import CallPhase, Phase
from relay.call.playback import PlaybackTracker
from relay.call.reconnect import APOLOGY_GAP_SECONDS
from relay.call.replay import History
from relay.call.replay import items as replay_items
from relay.call.settings import BridgeSettings

log = logging.getLogger(__name__)

HANDOVER_CUT = "cut by a relay handover"


class Continuity:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        info: CallInfo,
        link: UpstreamLink,
        ledger: ResponseLedger,
        playback: PlaybackTracker,
        phase: Phase,
        greeting: Greeting,
        ending: CallEnd,
        session_update: Callable[[], dict[str, Any]],
        ask_for_greeting: Callable[[list[Output]], None],
        say_goodbye: Callable[[list[Output], float], None],
        has_tools: Callable[[], bool],
    ):
        self.s = settings
        self.info = info
        self.link = link
        self.ledger = ledger
        self.playback = playback
        self.phase = phase
        self.greeting = greeting
        self.call_end = ending
        self._session_update = session_update
        self._ask_for_greeting = ask_for_greeting
        self._say_goodbye = say_goodbye
        self._has_tools = has_tools
        self._continue = False  # a reply was cut by a drop: ask for the rest on reopen

    def _log_ctx(self) -> dict[str, str]:
        return {"call_sid": self.info.call_sid}

    # -- upstream lifecycle -------------------------------------------------------------------
    def on_upstream_open(self, now: float) -> list[Output]:
        """Flush what Twilio sent before OpenAI answered, in order. A session opened after a
        drop first gets the call's configuration and conversation back."""
        gap = self.link.opened(now)
        out: list[Output] = []
        if gap is not None and self.info.started_at_start is not None:
            self.link.gaps.append(gap)
            self.link.reconnected += 1
            log.info(
                "OpenAI Realtime reconnected after %d ms; replaying %d turns",
                gap * 1000,
                len(self.ledger.history.turns),
                extra={**self._log_ctx(), "outcome": "reconnected"},
            )
            self.restore(out, now, gap)
        out += self.link.flush()
        return out

    def on_upstream_closed(self, now: float) -> list[Output]:
        """The upstream socket died, or an attempt to open one failed: try again (a
        :class:`relay.call.reconnect.Reconnect`) while the allowance lasts, else end the call."""
        out: list[Output] = []
        if self.call_end.ended is not None or self.phase.is_(CallPhase.HANDOVER):
            return out  # a handover closes the upstream on purpose
        if self.link.dropped():
            self._on_drop()
        attempt = self.link.next_attempt(now)
        if attempt is None:
            self.call_end.emit(out, EndReason.UPSTREAM_LOST, deliberate=False)
        else:
            out.append(attempt)
        return out

    def _on_drop(self) -> None:
        rid = self.ledger.take_active()
        if rid is not None:
            audible = any(i.response_id == rid for i in self.playback.items.values())
            if rid == self.greeting.response_id or self.greeting.requested:
                self.greeting.on_upstream_lost(audible)
            if audible and self.phase.talking and not self.info.voicemail:
                self.ledger.said_partly(rid)
                self._continue = True
            self.ledger.discard(rid)
        elif self.greeting.requested:
            self.greeting.on_upstream_lost(False)
        if self.phase.is_(CallPhase.GOODBYE):
            self.phase.to(CallPhase.GOODBYE_PENDING)
        self.ledger.stale_items.update(self.playback.items)

    def restore(self, out: list[Output], now: float, gap: float) -> None:
        """The same session, the conversation so far, then whatever was under way."""
        out.append(to_openai(self._session_update()))
        for item in replay_items(self.ledger.history):
            out.append(to_openai(item))
        if not self.greeting.spoken and not self.greeting.requested:
            out.append(to_openai(greeting_item(self.info.kind)))
            self._ask_for_greeting(out)
        elif self.phase.is_(CallPhase.GOODBYE_PENDING):
            self._say_goodbye(out, now)
        elif self.phase.talking and (self._continue or gap > APOLOGY_GAP_SECONDS):
            apologise = gap > APOLOGY_GAP_SECONDS
            out.append(to_openai(continue_response(self.s, apologise, self._has_tools())))
        self._continue = False

    # -- handover -------------------------------------------------------------------------------
    def prepare_hand_over(self, now: float) -> bool | None:
        """Before the call is frozen for another relay: None if it cannot move (not started,
        not bound to a call, already ending); else whether a reply was under way (it is cut
        where the caller stopped hearing it, and the next relay asks for the rest)."""
        info = self.info
        if (
            self.call_end.ended is not None
            or info.started_at_start is None
            or not info.bound
            or self.link.awaiting_resume
            or not self.phase.is_(CallPhase.TALKING, CallPhase.GOODBYE_PENDING, CallPhase.GOODBYE)
        ):
            return None
        rid, carry_on = self.ledger.active, False
        if rid is not None and self.phase.talking and not info.voicemail:
            # Twilio drops its buffer when the call moves: only what played so far was heard.
            heard = self.playback.heard_fraction(rid, now)
            self.ledger.cut(rid, HANDOVER_CUT, heard, relabel=False)
            self.ledger.said_partly(rid)
            carry_on = True
        return carry_on

    def on_resume(
        self, state: CallState | None, now: float, gap: float, transcript: list
    ) -> list[Output]:
        """The saved state of a call another relay handed over (None: expired or claimed).
        ``transcript`` is the call's transcript lines, replaced by the saved ones."""
        out: list[Output] = []
        self.link.awaiting_resume = False
        if self.call_end.ended is not None:
            return out
        info = self.info
        if state is None:
            log.warning(
                "resumed stream without saved state; carrying on without the transcript",
                extra={**self._log_ctx(), "reason": "resume_state_missing"},
            )
            self.greeting.spoken = True  # the call is under way: no second greeting
        else:
            info.kind, info.voicemail = state.kind, state.voicemail
            info.started_at = now - state.used_s
            transcript[:] = [tuple(line) for line in state.lines]
            self.ledger.reset_history(History.from_json(state.turns))
            self.greeting.reset(info.voicemail)
            self.greeting.spoken = state.greeting_spoken
            self._continue = state.continue_reply
            if info.voicemail:  # as on a first start: never hold a machine's line forever
                info.voicemail_deadline = now + self.s.goodbye_fallback_s + 40.0
            self.link.gaps.append(gap)
            log.info(
                "call resumed from another relay after %d ms: %d turns, %.0f s used",
                gap * 1000,
                len(self.ledger.history.turns),
                state.used_s,
                extra={**self._log_ctx(), "outcome": "resumed"},
            )
        self.restore(out, now, gap)
        return out
