"""Outgoing webhooks, signed the way Twilio signs them.

Conversations post-event webhooks are ``application/x-www-form-urlencoded`` POSTs carrying an
``X-Twilio-Signature`` = HMAC-SHA1(auth token, URL + sorted name/value pairs), computed here by
the SDK's own ``RequestValidator`` so the app's validation is tested against the real
algorithm. Twilio gives a webhook 5 seconds; so does the simulator. Every delivery is kept in a
short log for ``GET /_sandbox/webhooks``; ``GET /_sandbox/webhooks/in_flight`` counts those not yet
answered.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from sandbox.twilio_sim.store import Conversation, Store

TIMEOUT_SECONDS = 5.0


@dataclass
class Delivery:
    url: str
    params: dict[str, str]
    status: int | None = None
    body: str | None = None
    error: str | None = None
    at: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "webhook_url": self.url,
            "webhook_status": self.status,
            "webhook_body": self.body,
            "webhook_error": self.error,
        }


class WebhookSender:
    def __init__(self, auth_token: str, history: int = 500):
        self._validator = RequestValidator(auth_token)
        self._lock = threading.Lock()
        self._log: collections.deque[Delivery] = collections.deque(maxlen=history)
        self._in_flight = 0  # posted later, not yet answered
        self.webhook_sid = "WH" + uuid.uuid4().hex

    def signature(self, url: str, params: dict[str, str]) -> str:
        return self._validator.compute_signature(url, params)

    def post(self, url: str, params: dict[str, str], method: str = "POST") -> Delivery:
        """Send now and wait for the answer (at most 5 s). A GET carries the parameters in
        the query string and is signed over that full URL alone, as Twilio does."""
        delivery = Delivery(url=url, params=params, at=time.time())
        if method.upper() == "GET":
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            signed, body = self.signature(url, {}), None
        else:
            signed, body = self.signature(url, params), params
        headers = {
            "X-Twilio-Signature": signed,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        try:
            resp = requests.request(
                method.upper(),
                url,
                data=body,
                headers=headers,
                timeout=TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            delivery.status, delivery.body = resp.status_code, resp.text[:2000]
        except requests.RequestException as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._log.append(delivery)
        return delivery

    def post_later(self, url: str, params: dict[str, str]) -> None:
        """POST from a background thread, as Twilio does after answering the REST call."""
        with self._lock:
            self._in_flight += 1
        threading.Thread(target=self._post_counted, args=(url, params), daemon=True).start()

    def _post_counted(self, url: str, params: dict[str, str]) -> None:
        try:
            self.post(url, params)
        finally:
            with self._lock:
                self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        """Webhooks decided on but not yet answered. A request that returned has decided all
        of its own, so 0 after it means every webhook it caused has been delivered: what a
        test waits for before it asserts that one was not sent."""
        with self._lock:
            return self._in_flight

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(d) for d in self._log]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


def _common(store: Store, conv: Conversation, event: str, webhook_sid: str) -> dict[str, str]:
    return {
        "AccountSid": store.cfg.account_sid,
        "EventType": event,
        "ConversationSid": conv.sid,
        "ChatServiceSid": conv.record["chat_service_sid"],
        "MessagingServiceSid": conv.record["messaging_service_sid"],
        "RetryCount": "0",
        "WebhookType": "webhook",
        "WebhookSid": webhook_sid,
    }


def message_added(
    store: Store, conv: Conversation, message: dict[str, Any], source: str, webhook_sid: str
) -> dict[str, str]:
    """``onMessageAdded`` form fields (Twilio's docs: conversations-webhooks#onmessageadded)."""
    params = _common(store, conv, "onMessageAdded", webhook_sid)
    params.update(
        {
            "MessageSid": message["sid"],
            "Index": str(message["index"]),
            "DateCreated": message["date_created"],
            "Author": message["author"],
            "Attributes": message["attributes"],
            "Source": source,
        }
    )
    if message["body"] is not None:
        params["Body"] = message["body"]
    if message["participant_sid"]:
        params["ParticipantSid"] = message["participant_sid"]
    if message["media"]:
        params["Media"] = json.dumps(
            [
                {
                    "Sid": m["sid"],
                    "Filename": m["filename"],
                    "ContentType": m["content_type"],
                    "Size": m["size"],
                    "Category": m["category"],
                }
                for m in message["media"]
            ]
        )
    return params


def state_updated(
    store: Store,
    conv: Conversation,
    state_from: str,
    state_to: str,
    reason: str,
    webhook_sid: str,
) -> dict[str, str]:
    """``onConversationStateUpdated`` form fields."""
    params = _common(store, conv, "onConversationStateUpdated", webhook_sid)
    params.update(
        {
            "StateFrom": state_from,
            "StateTo": state_to,
            "StateUpdated": conv.record["date_updated"],
            "Reason": reason,
        }
    )
    return params
