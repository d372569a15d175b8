"""Handing a live call to another relay process (a deploy's SIGTERM) instead of ending it.

The draining relay saves the call's state in Redis under a resume key (short TTL), then
redirects the call through Twilio's Calls API to new TwiML: ``<Connect><Stream>`` to
``RELAY_PUBLIC_URL`` with a fresh stream token bound to the call and a ``resume``
``<Parameter>``. Twilio ends the current stream and opens a new one, which the router sends to
a live relay; that one claims the state (once: ``GETDEL``), opens OpenAI with the same session,
replays the conversation and carries on, with no greeting and no apology.

The key is ``gf:resume:<CallSid>:<id>`` where the CallSid is the stream token's, never a value
from the stream, so a stream can only ever claim its own call's state.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import redis

from common.config import Config
from common.redis_util import get_redis, key
from common.stream_twiml import Param, connect_stream, stream_token
from common.twilio_client import make_client
from relay import metrics

log = logging.getLogger(__name__)

#: Long enough for Twilio to run the new TwiML and open the stream; a stale key is useless.
RESUME_TTL_SECONDS = 60


@dataclass(frozen=True)
class LoadResume:
    """The new stream names a resume key: load the saved call, then call ``on_resume``."""

    resume_id: str


@dataclass
class CallState:
    """Everything a relay needs to carry a call on (JSON in Redis)."""

    call_sid: str
    kind: str
    voicemail: bool
    params: dict[str, str]
    #: Seconds of the call already used: the time cap counts from the call's start.
    used_s: float
    lines: list[tuple[str, str]]
    turns: list[list[str]]
    greeting_spoken: bool
    #: The assistant was mid-reply: the next relay asks for the rest.
    continue_reply: bool
    #: Wall-clock time of the save (the new relay measures the gap from it).
    saved_at: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> CallState | None:
        try:
            data = orjson.loads(raw)
            return cls(
                call_sid=str(data["call_sid"]),
                kind=str(data["kind"]),
                voicemail=bool(data["voicemail"]),
                params={str(k): str(v) for k, v in dict(data["params"]).items()},
                used_s=float(data["used_s"]),
                lines=[(str(w), str(t)) for w, t in data["lines"]],
                turns=[[str(r), str(t)] for r, t in data["turns"]],
                greeting_spoken=bool(data["greeting_spoken"]),
                continue_reply=bool(data["continue_reply"]),
                saved_at=float(data["saved_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def resume_key(call_sid: str, resume_id: str) -> str:
    return key("resume", call_sid, resume_id)


def new_resume_id() -> str:
    return secrets.token_urlsafe(16)


def save(client: redis.Redis, state: CallState, resume_id: str) -> None:
    client.set(resume_key(state.call_sid, resume_id), state.to_json(), ex=RESUME_TTL_SECONDS)


def claim(client: redis.Redis, call_sid: str, resume_id: str) -> CallState | None:
    """The saved state, read and deleted in one step (a second stream gets nothing)."""
    if not call_sid or not resume_id or len(resume_id) > 64:
        return None
    raw = client.getdel(resume_key(call_sid, resume_id))
    state = CallState.from_json(raw) if raw else None
    if state is not None and state.call_sid != call_sid:
        return None  # cannot happen with our keys; never hand one call another's state
    return state


def redirect_twiml(cfg: Config, state: CallState, resume_id: str) -> str:
    """The TwiML that moves the call to a new stream on a live relay."""
    params = {**state.params, Param.RESUME: resume_id}
    return str(connect_stream(cfg, stream_token(cfg, state.call_sid), params))


def redirect(cfg: Config, call_sid: str, twiml: str) -> Any:
    """Twilio's Calls API: run ``twiml`` now (the current stream ends, a new one opens)."""
    return make_client(cfg).calls(call_sid).update(twiml=twiml)


def move(cfg: Config, state: CallState) -> bool:
    """Save ``state`` and redirect the call to a new stream (blocking: Redis, Twilio REST).
    False when either failed: the call is still here and ends the old way."""
    resume_id = new_resume_id()
    try:
        save(get_redis(), state, resume_id)
        redirect(cfg, state.call_sid, redirect_twiml(cfg, state, resume_id))
    except Exception as exc:
        log.error(
            "handover failed: %s",
            str(exc)[:200] or type(exc).__name__,
            extra={"call_sid": state.call_sid, "reason": "handover_failed"},
        )
        metrics.HANDOVERS.labels("failed").inc()
        return False
    log.info(
        "call handed over to another relay (%.1f s used, %d lines)",
        state.used_s,
        len(state.lines),
        extra={"call_sid": state.call_sid, "outcome": "handed_over"},
    )
    metrics.HANDOVERS.labels("handed_over").inc()
    return True


def load(call_sid: str, resume_id: str) -> tuple[CallState | None, float]:
    """The state another relay saved for this stream (claimed once), and the seconds since
    it was saved; (None, 0) when it expired, was claimed or is unreadable."""
    try:
        state = claim(get_redis(), call_sid, resume_id)
    except redis.RedisError as exc:
        log.warning("resume state unreadable: %s", type(exc).__name__, extra={"call_sid": call_sid})
        state = None
    gap = max(0.0, time.time() - state.saved_at) if state is not None else 0.0
    metrics.HANDOVERS.labels("resumed" if state is not None else "state_missing").inc()
    return state, gap
