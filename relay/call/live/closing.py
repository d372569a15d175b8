"""A line the call ends on (the time cap's goodbye, the voicemail message, the closing line of
``end_call`` / ``transfer_to_staff``), from the moment it is asked for until it was heard.

GPT-Live says when audio starts, never when it ends: a line is over once audio came after it
was asked for, the model then stayed silent for :data:`QUIET_SECONDS`, and Twilio has played
everything it was sent (its marks say so).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import prompts
from common.end_reasons import EndReason

QUIET_SECONDS = 0.7

GOODBYE = "goodbye"
VOICEMAIL = "voicemail"
TOOL = "tool"


@dataclass
class Closing:
    purpose: str
    deadline: float
    spoke: bool = False
    #: What the model said for it (the voicemail must have been said in full).
    said: str = ""

    def heard(self, now: float, last_audio_at: float, unheard: bool) -> bool:
        return self.spoke and not unheard and now - last_audio_at >= QUIET_SECONDS

    def overdue(self, now: float) -> bool:
        return now >= self.deadline

    def end(self, heard: bool) -> tuple[EndReason, bool] | None:
        """How the call ends after this line (reason, deliberate); None for a tool's line
        (the tool decides: a hang-up, or a transfer that keeps the call)."""
        if self.purpose == GOODBYE:
            return EndReason.TIME_LIMIT, True
        if self.purpose != VOICEMAIL:
            return None
        # Left only when every word of the message was said (and heard): a machine keeps one
        # take, and nobody can ask for the rest.
        whole = _words(prompts.greeting("voicemail")) <= _words(self.said)
        if not whole:
            return EndReason.VOICEMAIL_FAILED, False
        return (EndReason.VOICEMAIL_LEFT if heard else EndReason.VOICEMAIL_TIMEOUT), True


def _words(text: str) -> set[str]:
    return {w.strip(".,!?:;\"'").lower() for w in text.split()} - {""}
