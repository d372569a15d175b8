"""What a call is: whose, which kind, and when it started (set by ``start`` or a resume)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallInfo:
    #: The call this stream is bound to (the stream token's): every Redis key uses it.
    call_sid: str = ""
    #: ``params`` etc. describe a call the token named; an unbound stream acts for nobody.
    bound: bool = False
    #: The TwiML's ``<Parameter>``s, from ``start.customParameters``.
    params: dict[str, str] = field(default_factory=dict)
    #: ``inbound``, ``outbound``, ``voicemail`` or ``unknown`` (the greeting's kind).
    kind: str = "unknown"
    voicemail: bool = False
    #: Monotonic time the call's clock counts from (the time cap); a resume moves it back.
    started_at: float = 0.0
    #: Monotonic time of this stream's ``start`` (None: not started).
    started_at_start: float | None = None
    #: A voicemail's message must have played by then (a machine may never let it finish).
    voicemail_deadline: float | None = None
