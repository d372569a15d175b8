"""The objects one simulator instance shares between its routes."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from sandbox.httpserver import FaultBook
from sandbox.twilio_sim.call_model import Next
from sandbox.twilio_sim.errors import not_found
from sandbox.twilio_sim.store import SimConfig, Store
from sandbox.twilio_sim.webhooks import WebhookSender

if TYPE_CHECKING:
    from sandbox.twilio_sim.callflow import CallFlow
    from sandbox.twilio_sim.dialing import PhoneBehaviour


@dataclass
class Sim:
    cfg: SimConfig
    store: Store
    faults: FaultBook
    webhooks: WebhookSender
    requests: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=2000)
    )
    requests_lock: threading.Lock = field(default_factory=threading.Lock)
    #: calls the simulator is running (TwiML followed, streams open), by call SID
    flows: dict[str, CallFlow] = field(default_factory=dict)
    #: how dialled phones behave (``/_sandbox/phones/<number>``), by number
    phones: dict[str, PhoneBehaviour] = field(default_factory=dict)
    #: the call clock's speed: Pause, Say, Record and Dial ringing last 1/speed as long
    speed: float = 1.0

    @classmethod
    def create(cls, cfg: SimConfig) -> Sim:
        return cls(cfg, Store(cfg), FaultBook(), WebhookSender(cfg.auth_token))

    def reset(self) -> None:
        for flow in list(self.flows.values()):
            flow.update(Next("hangup", why="reset"))
        for flow in list(self.flows.values()):
            flow.done.wait(5)
        self.flows.clear()
        self.phones.clear()
        self.speed = 1.0
        self.store.reset()
        self.faults.clear()
        self.webhooks.clear()
        with self.requests_lock:
            self.requests.clear()


def sim() -> Sim:
    return current_app.extensions["twilio_sim"]


def origin() -> str:
    """``http://127.0.0.1:PORT`` as the client reached us; absolute URLs in responses use it
    so the SDK's ``next_page_url`` requests come back here."""
    return request.host_url.rstrip("/")


def form_value(name: str) -> str | None:
    """A form field, ``None`` when absent (an empty string is kept: Twilio tells them apart)."""
    return request.form.get(name)


def require_account(account_sid: str) -> None:
    """Api 2010 paths name the account; another account's path is a 404, as on Twilio."""
    if account_sid != sim().cfg.account_sid:
        raise not_found(request.path)
