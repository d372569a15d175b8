"""The I/O behind the call tools: Twilio REST (SDK) and Redis, from the relay process, and the
per-call :class:`ToolRunner` the call session performs them with.

The twilio SDK speaks through ``requests``, which gevent has patched in the relay, so each
function blocks only its own greenlet; run them off the frame loops (``gevent.spawn``).
Results are short words for :meth:`relay.call.tools.ToolBox.finish` and the logs; Twilio's
own error text never reaches the model (it may name numbers or accounts), only the log.
"""

from __future__ import annotations

import logging
import time

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from common import call_keys
from common.config import Config
from common.redis_util import get_redis
from common.twilio_client import make_client
from relay.call.tools import Action, Hangup, SendText, TakeMessage, ToolOutcome, Transfer

log = logging.getLogger(__name__)

#: Twilio codes meaning "this number cannot get this text": no point retrying.
#: 21211 invalid To, 21408 region not enabled, 21610 recipient replied STOP, 21612 route not
#: reachable, 21614 not a mobile number.
REFUSED_CODES = frozenset({21211, 21408, 21610, 21612, 21614})
#: One quick retry for a 429/5xx or a dropped connection; the caller is waiting on the line.
RETRY_DELAY_SECONDS = 0.5
TRANSFER_PATH = "/twilio/voice/transfer"


def _transient(exc: Exception) -> bool:
    if isinstance(exc, TwilioRestException):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, requests.RequestException)


def _twilio_error(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return f"HTTP {exc.status} code {exc.code}: {str(exc.msg)[:200]}"
    return type(exc).__name__


def send_text(client: Client, cfg: Config, to: str, body: str, call_sid: str = "") -> str:
    """An SMS from the bot number: ``sent``, ``refused`` (the number cannot get it) or
    ``failed``."""
    ctx = {"call_sid": call_sid}
    for attempt in (1, 2):
        try:
            message = client.messages.create(to=to, from_=cfg.bot_projected_address, body=body)
        except (TwilioException, requests.RequestException) as exc:
            if attempt == 1 and _transient(exc):
                time.sleep(RETRY_DELAY_SECONDS)
                continue
            refused = isinstance(exc, TwilioRestException) and exc.code in REFUSED_CODES
            outcome = "refused" if refused else "failed"
            log.warning(
                "call text not sent: %s", _twilio_error(exc), extra={**ctx, "outcome": outcome}
            )
            return outcome
        log.info("call text sent", extra={**ctx, "outcome": "sent", "message_sid": message.sid})
        return "sent"
    return "failed"  # not reached: the loop returns


def transfer_url(cfg: Config) -> str:
    return cfg.public_base_url + TRANSFER_PATH


def transfer(
    client: Client,
    cfg: Config,
    call_sid: str,
    caller: str,
    reason: str,
    store: redis.Redis | None = None,
) -> str:
    """Redirect the live call to ``/twilio/voice/transfer`` (which dials staff): ``redirected``
    or ``failed``. The reason travels in Redis under the call SID, never in the URL (Twilio
    logs URLs); without Redis the transfer still happens, the whisper just has no reason."""
    ctx = {"call_sid": call_sid}
    if not (cfg.staff_transfer_number and cfg.public_base_url and call_sid):
        log.error("transfer impossible: not configured", extra={**ctx, "outcome": "failed"})
        return "failed"
    try:
        call_keys.save_transfer(store or get_redis(), call_sid, caller, reason)
    except redis.RedisError:
        log.warning("transfer reason not saved", extra=ctx)
    try:
        client.calls(call_sid).update(url=transfer_url(cfg), method="POST")
    except (TwilioException, requests.RequestException) as exc:
        log.error("transfer failed: %s", _twilio_error(exc), extra={**ctx, "outcome": "failed"})
        return "failed"
    log.info("call redirected to staff", extra={**ctx, "outcome": "redirected"})
    return "redirected"


def hang_up(client: Client, call_sid: str) -> str:
    """End the call through REST (the fallback when closing the stream did not): ``completed``
    or ``failed``."""
    try:
        client.calls(call_sid).update(status="completed")
    except (TwilioException, requests.RequestException) as exc:
        log.warning(
            "REST hang-up failed: %s",
            _twilio_error(exc),
            extra={"call_sid": call_sid, "outcome": "failed"},
        )
        return "failed"
    return "completed"


def take_message(call_sid: str, action: TakeMessage, store: redis.Redis | None = None) -> str:
    """Keep the message with the call's notes for the summary: ``stored`` or ``failed``."""
    ctx = {"call_sid": call_sid}
    if not call_sid:
        return "failed"
    try:
        call_keys.add_note(
            store or get_redis(),
            call_sid,
            "message",
            name=action.name,
            callback_number=action.callback_number,
            message=action.message,
        )
    except redis.RedisError:
        log.error("message for staff not stored", extra={**ctx, "outcome": "failed"})
        return "failed"
    log.info("message for staff stored", extra={**ctx, "outcome": "stored"})
    return "stored"


def perform(client: Client, cfg: Config, call_sid: str, caller: str, action: Action) -> str:
    """Run one :data:`relay.call.tools.Action` (blocking: call it in its own greenlet); the
    result as the functions above return it, ``""`` for :class:`relay.call.tools.Nothing`."""
    if isinstance(action, SendText):
        return send_text(client, cfg, action.to, action.body, call_sid)
    if isinstance(action, TakeMessage):
        return take_message(call_sid, action)
    if isinstance(action, Transfer):
        return transfer(client, cfg, call_sid, caller, action.reason)
    if isinstance(action, Hangup):
        return hang_up(client, call_sid)
    return ""


class ToolRunner:
    """One call's actions. The Twilio client is made on first use (most calls use none)."""

    def __init__(self, cfg: Config, call_sid: str, caller: str):
        self.cfg = cfg
        self.call_sid = call_sid
        self.caller = caller
        self._client: Client | None = None

    def perform(self, done: ToolOutcome) -> str:
        """Blocking: the result word :func:`perform` gives, ``failed`` if
        it could not even start (no Twilio credentials, an unexpected error)."""
        try:
            if self._client is None:
                self._client = make_client(self.cfg)
            return perform(self._client, self.cfg, self.call_sid, self.caller, done.action)
        except Exception as exc:  # the call goes on; the model is told it failed
            log.error(
                "tool action %s failed: %s",
                done.call.name,
                str(exc)[:200] or type(exc).__name__,
                extra={"call_sid": self.call_sid, "outcome": "failed"},
            )
            return "failed"
