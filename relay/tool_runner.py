"""The gevent side of a tool call: perform the action a :class:`relay.call.outputs.RunTool`
names (Twilio REST, Redis) in its own greenlet, so the frame loops never wait on I/O.

Actions are not killed with the call: a text half-sent when the caller hangs up still
finishes and is recorded (the session waits for them, bounded, before it writes the call's
record).
"""

from __future__ import annotations

import logging

from twilio.rest import Client

from common.config import Config
from common.twilio_client import make_client
from relay.call import actions as call_actions
from relay.call.tools import ToolOutcome

log = logging.getLogger(__name__)


class ToolRunner:
    """One call's actions. The Twilio client is made on first use (most calls use none)."""

    def __init__(self, cfg: Config, call_sid: str, caller: str):
        self.cfg = cfg
        self.call_sid = call_sid
        self.caller = caller
        self._client: Client | None = None

    def perform(self, done: ToolOutcome) -> str:
        """Blocking: the result word :func:`relay.call.actions.perform` gives, ``failed`` if
        it could not even start (no Twilio credentials, an unexpected error)."""
        try:
            if self._client is None:
                self._client = make_client(self.cfg)
            return call_actions.perform(
                self._client, self.cfg, self.call_sid, self.caller, done.action
            )
        except Exception as exc:  # the call goes on; the model is told it failed
            log.error(
                "tool action %s failed: %s",
                done.call.name,
                str(exc)[:200] or type(exc).__name__,
                extra={"call_sid": self.call_sid, "outcome": "failed"},
            )
            return "failed"
