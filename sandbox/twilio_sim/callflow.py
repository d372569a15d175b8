"""A live call as Twilio runs it: fetch TwiML, execute its verbs, follow updates.

One :class:`CallFlow` (a thread) per call the simulator connects. It asks the call's URL for
TwiML with a signed webhook, runs the verbs in order, and opens the ``<Connect><Stream>`` with
the simulated phone (:class:`sandbox.phone.Phone`, signing the upgrade like Twilio). An
UpdateCall (``Twiml``/``Url``/``Status``) interrupts whatever verb runs: a live stream gets
``stop`` and is closed, and the new TwiML runs. A call redirected that way abandons its
document, so the ``<Connect action>`` is requested only when the *server* ends the stream.

Waits (``Say``, ``Pause``, ``Record``, ``Dial`` ringing) run on the simulator's clock, divided
by its ``speed`` (``/_sandbox/settings``); the stream's audio is always real time.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from sandbox import phone as phones
from sandbox.twilio_sim import dialing, twiml
from sandbox.twilio_sim.call_model import ENDED, Interrupted, Next, set_status
from sandbox.twilio_sim.records import new_sid

if TYPE_CHECKING:
    from sandbox.twilio_sim.context import Sim

#: Twilio speaks roughly this fast; only the pacing of the simulated call depends on it.
SAY_MS_PER_CHAR = 50


class CallFlow:
    def __init__(self, sim: Sim, call_sid: str):
        self.sim = sim
        self.sid = call_sid
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.streams: list[phones.Phone] = []
        self.stream_ends: dict[str, str] = {}  # stream SID -> who ended it
        self.phone: phones.Phone | None = None
        self.doc_url: str | None = None
        self.pending_speech_ms = 0  # what the caller says into the next <Record>
        self._next: Next | None = None
        self._wake = threading.Event()
        self.done = threading.Event()

    # -- control -----------------------------------------------------------------------------
    def start(self, first: Next) -> None:
        threading.Thread(
            target=self._run, args=(first,), name=f"call-{self.sid}", daemon=True
        ).start()

    def update(self, nxt: Next) -> None:
        """What UpdateCall and a caller's hang-up do: interrupt the running verb."""
        with self.lock:
            self._next = nxt
        self._wake.set()

    def note(self, kind: str, **fields: Any) -> None:
        with self.lock:
            self.log.append({"kind": kind, "at": time.time(), **fields})

    def sleep(self, seconds: float) -> None:
        """Wait on the simulator's clock; an update cuts it short (:class:`Interrupted`)."""
        if self._wake.wait(max(0.0, seconds) / self.sim.speed):
            raise Interrupted

    def call(self) -> dict[str, Any]:
        return self.sim.store.calls[self.sid]

    def call_params(self, call: dict[str, Any] | None = None) -> dict[str, str]:
        """The form fields of every voice request Twilio makes for this call."""
        with self.sim.store.lock:
            c = dict(call or self.call())
        params = {
            "AccountSid": c["account_sid"],
            "ApiVersion": "2010-04-01",
            "CallSid": c["sid"],
            "CallStatus": c["status"],
            "Called": c["to"],
            "Caller": c["from"],
            "Direction": c["direction"],
            "From": c["from"],
            "To": c["to"],
        }
        if c.get("parent_call_sid"):
            params["ParentCallSid"] = c["parent_call_sid"]
        if c.get("answered_by"):
            params["AnsweredBy"] = c["answered_by"]
        return params

    def resolve(self, url: str) -> str:
        """Relative URLs in TwiML are relative to the document's URL, as on Twilio."""
        return urljoin(self.doc_url, url) if self.doc_url else url

    def fetch(self, url: str, method: str, params: dict[str, str], why: str) -> str | None:
        """Request TwiML with a signed webhook; ``None`` (logged as 11200) if it failed."""
        delivery = self.sim.webhooks.post(url, params, method or "POST")
        self.note(
            "fetch", url=url, method=method, why=why, status=delivery.status, error=delivery.error
        )
        if delivery.error or not delivery.status or not 200 <= delivery.status < 300:
            self.note("error", code=11200, message=f"HTTP retrieval failure: {url}")
            return None
        return delivery.body or ""

    def snapshot(self) -> dict[str, Any]:
        """``GET /_sandbox/calls/<sid>/log``: what happened on the call so far."""
        with self.lock:
            log = [dict(e) for e in self.log]
            streams = list(self.streams)
            ends = dict(self.stream_ends)
        with self.sim.store.lock:
            status = self.call()["status"]
        return {
            "call_sid": self.sid,
            "status": status,
            "done": self.done.is_set(),
            "events": log,
            "said": [e["text"] for e in log if e["kind"] == "say" and e["leg"] == "caller"],
            "streams": [_stream_view(p, ends.get(p.stream_sid)) for p in streams],
        }

    def speak(self, ulaw: bytes) -> bool:
        """The caller talks: onto the open stream, else into the next ``<Record>``."""
        current = self.phone
        if current is not None and not current.closed.is_set():
            current.say(ulaw)
            return True
        with self.lock:
            self.pending_speech_ms += len(ulaw) // phones.BYTES_PER_MS
        return False

    # -- the document loop -------------------------------------------------------------------
    def _take_next(self) -> Next | None:
        with self.lock:
            nxt, self._next = self._next, None
        self._wake.clear()
        return nxt

    def _run(self, first: Next) -> None:
        nxt: Next | None = first
        try:
            while nxt is not None and nxt.kind != "hangup":
                try:
                    nxt = self._document(nxt)
                except Interrupted:
                    nxt = self._take_next()
                    self.note("updated", to=nxt.kind if nxt else None)
        finally:
            if nxt is not None and nxt.kind == "hangup" and nxt.why:
                self.note("hangup", by=nxt.why)
            self._end()

    def _document(self, source: Next) -> Next | None:
        if source.kind == "url":
            url = source.value
            body = self.fetch(
                url, source.method, {**self.call_params(), **source.params}, source.why
            )
            if body is None:
                return None
            self.doc_url = url
        else:
            body = source.value
            self.doc_url = None  # a Twiml document has no URL: relative URLs cannot resolve
        try:
            verbs = twiml.parse(body)
        except twiml.TwimlError as exc:
            self.note("error", code=exc.code, message=str(exc))
            return None
        return self._execute(verbs)

    def _execute(self, verbs: list[twiml.Verb]) -> Next | None:
        for verb in verbs:
            if self._wake.is_set():
                raise Interrupted
            if verb.name == "Say":
                self.note("say", leg="caller", text=verb.text, voice=verb.attr("voice"))
                self.sleep(min(len(verb.text) * SAY_MS_PER_CHAR / 1000, 15.0))
            elif verb.name in ("Pause", "Play"):
                self.note(verb.name.lower(), seconds=verb.seconds("length", 1), url=verb.text)
                self.sleep(verb.seconds("length", 1))
            elif verb.name in ("Hangup", "Reject"):
                self.note("hangup", by="twiml")
                return None
            elif verb.name == "Redirect":
                self.note("redirect", url=self.resolve(verb.text))
                return Next(
                    "url", self.resolve(verb.text), verb.attr("method", "POST"), why="redirect"
                )
            elif verb.name == "Gather":
                self.note("gather", digits="")
                self.sleep(verb.seconds("timeout", 5))
            elif verb.name == "Record":
                nxt = self._record(verb)
                if nxt is not None:
                    return nxt
            elif verb.name == "Dial":
                nxt = dialing.dial(self, verb)
                if nxt is not None:
                    return nxt
            elif verb.name == "Connect":
                nxt = self._connect(verb)
                if nxt is not None:
                    return nxt
        return None  # no verbs left: Twilio ends the call

    # -- verbs -------------------------------------------------------------------------------
    def _connect(self, verb: twiml.Verb) -> Next | None:
        try:
            url, params = twiml.stream_of(verb)
        except twiml.TwimlError as exc:
            self.note("error", code=exc.code, message=str(exc))
            return self._after_connect(verb)
        signature = self.sim.webhooks.signature(url, {})
        line = phones.Phone(
            url,
            params,
            call_sid=self.sid,
            account_sid=self.sim.cfg.account_sid,
            headers={"X-Twilio-Signature": signature},
        )
        try:
            line.connect()
        except Exception as exc:  # a refused upgrade is Twilio's 31920; <Connect> ends
            self.note("error", code=31920, message=f"Stream handshake failed: {exc}")
            return self._after_connect(verb)
        with self.lock:
            self.streams.append(line)
            self.phone = line
        self.note("stream_started", stream_sid=line.stream_sid, url=url, params=params)
        line.start_line()
        while not line.closed.wait(0.02):
            if self._wake.is_set():
                with self.lock:
                    why = "hangup" if self._next and self._next.kind == "hangup" else "update"
                    self.stream_ends[line.stream_sid] = why
                line.hang_up()
                line.wait_closed(5)
                self.note("stream_ended", stream_sid=line.stream_sid, by=why)
                raise Interrupted
        with self.lock:
            self.stream_ends[line.stream_sid] = "server"
        self.note("stream_ended", stream_sid=line.stream_sid, by="server", code=line.close_code)
        return self._after_connect(verb)

    def _after_connect(self, verb: twiml.Verb) -> Next | None:
        action = verb.attr("action")
        if not action:
            return None
        self.note("connect_action", url=self.resolve(action))
        return Next("url", self.resolve(action), verb.attr("method", "POST"), why="connect_action")

    def _record(self, verb: twiml.Verb) -> Next | None:
        with self.lock:
            spoken_ms, self.pending_speech_ms = self.pending_speech_ms, 0
        timeout = verb.seconds("timeout", 5)
        max_length = verb.seconds("maxLength", 3600)
        duration = min(spoken_ms / 1000, max_length)
        self.sleep(min(duration + timeout, max_length))  # speech, then the silence that ends it
        sid = new_sid("RE")
        account = self.sim.cfg.account_sid
        action = self.resolve(verb.attr("action")) if verb.attr("action") else self.doc_url
        self.note("record", recording_sid=sid, duration=int(duration), action=action)
        if duration < 1 or not action:
            return None  # an empty recording: Twilio skips the action and goes on
        params = {
            "RecordingSid": sid,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}",
            "RecordingDuration": str(int(duration)),
        }
        return Next("url", action, verb.attr("method", "POST"), params, why="record_action")

    def _end(self) -> None:
        store = self.sim.store
        with store.lock:
            call = store.calls.get(self.sid)
            if call is not None and call["status"] not in ENDED:
                set_status(call, "completed")
        self.note("ended")
        self.done.set()


def _stream_view(line: phones.Phone, ended_by: str | None) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for event in list(line.events):
        kinds[event.get("event", "?")] = kinds.get(event.get("event", "?"), 0) + 1
    return {
        "stream_sid": line.stream_sid,
        "url": line.url,
        "custom_parameters": line.params,
        "start": line.sent_start,
        "stop_sent": line.stop_sent,
        "ended_by": ended_by,
        "open": not line.closed.is_set(),
        "close_code": line.close_code,
        "close_reason": line.close_reason,
        "received": kinds,
        "marks_echoed": len(line.marks_echoed),
        "clears": len(line.clears),
        "heard_ms": len(line.heard) // phones.BYTES_PER_MS,
    }


def tone_or_audio(payload: dict[str, Any]) -> bytes:
    """Speech for ``/speak``: ``{"ulaw": base64}`` or a tone of ``{"ms": N}``."""
    if payload.get("ulaw"):
        return base64.b64decode(str(payload["ulaw"]))
    return phones.tone(int(payload.get("ms") or 1200), float(payload.get("freq") or 300.0))
