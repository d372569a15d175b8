"""Where a call is in its life, as one enum every part of the bridge reads the same way."""

from __future__ import annotations

from enum import Enum


class CallPhase(Enum):
    """The call's phase. Caller audio reaches the model only while ``TALKING``."""

    #: The normal conversation.
    TALKING = "talking"
    #: ``end_call`` / ``transfer_to_staff`` accepted: its closing line is being spoken.
    TOOL_ENDING = "tool_ending"
    #: The "connecting you" line played and the redirect to staff is under way; Twilio's
    #: ``stop`` next is the move to staff.
    TRANSFERRING = "transferring"
    #: The time cap came during a reply: the goodbye is asked for once it ends.
    GOODBYE_PENDING = "goodbye_pending"
    #: The time cap's goodbye is being spoken.
    GOODBYE = "goodbye"
    #: The goodbye ended; the call ends when Twilio says it played.
    DONE = "done"
    #: Frozen and handed to another relay; Twilio's ``stop`` next is the move.
    HANDOVER = "handover"


class Phase:
    """The call's current :class:`CallPhase`, shared by the bridge's parts (one object, so a
    change made by one part is the one every other part sees)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = CallPhase.TALKING

    def is_(self, *phases: CallPhase) -> bool:
        return self.now in phases

    @property
    def talking(self) -> bool:
        return self.now is CallPhase.TALKING

    def to(self, phase: CallPhase) -> None:
        self.now = phase
