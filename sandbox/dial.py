"""Place a simulated call the way Twilio does: ask ``/twilio/voice`` for TwiML (a signed
webhook), then open the ``<Stream>`` it names with the ``<Parameter>``s it lists.

When the stream ends, ask the ``<Connect action>`` URL what to do next, as Twilio would, so
the caller hears the apology or a plain hang-up.

The webhook's ``Direction`` is Twilio's: ``inbound`` for a call to our number,
``outbound-api`` for one placed through the Calls API. ``AnsweredBy`` (answering machine
detection) exists only on API calls and only with values the call's ``MachineDetection`` can
produce (the Twilio simulator's rule, :data:`sandbox.twilio_sim.call_model.ANSWERED_BY`).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from sandbox.twilio_sim.call_model import ANSWERED_BY, answered_by_values


@dataclass
class StreamTarget:
    url: str
    params: dict[str, str]
    action: str | None


@dataclass
class AfterStream:
    """What Twilio would do after the stream: the verbs of the action's TwiML."""

    verbs: list[str]
    said: str

    @property
    def apologised(self) -> bool:
        return "Say" in self.verbs


class NoStream(RuntimeError):
    """The voice webhook answered without ``<Connect><Stream>`` (e.g. ``<Hangup/>`` for a fax)."""

    def __init__(self, verbs: list[str]):
        super().__init__(
            "the voice webhook did not return <Connect><Stream> (it answered "
            + (" + ".join(verbs) or "an empty <Response>")
            + ")"
        )
        self.verbs = verbs


def _post_signed(url: str, form: dict[str, str], auth_token: str) -> str:
    sig = RequestValidator(auth_token).compute_signature(url, form)
    req = urllib.request.Request(
        url,
        data=urlencode(form).encode(),
        method="POST",
        headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def voice_webhook(
    web_url: str,
    auth_token: str,
    *,
    call_sid: str,
    from_: str,
    to: str,
    answered_by: str | None = None,
    outbound: bool | None = None,
    machine_detection: str | None = None,
) -> StreamTarget:
    """POST /twilio/voice like Twilio and read the stream URL and parameters from the TwiML.

    ``outbound`` marks a call placed through the Calls API; left out, a call with an
    ``answered_by`` is one (Twilio detects machines on API calls only). ``machine_detection``
    left out is whichever mode can report ``answered_by``. A combination Twilio never sends is
    a ``ValueError``; a webhook that answers without a stream is :class:`NoStream`."""
    outbound = bool(answered_by) if outbound is None else outbound
    if answered_by:
        _check_amd(answered_by, outbound, machine_detection)
    form = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": from_,
        "To": to,
        "CallStatus": "in-progress",
        "Direction": "outbound-api" if outbound else "inbound",
        "ApiVersion": "2010-04-01",
    }
    if answered_by:
        form["AnsweredBy"] = answered_by
    root = ET.fromstring(_post_signed(web_url.rstrip("/") + "/twilio/voice", form, auth_token))
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if stream is None or not stream.get("url"):
        raise NoStream([el.tag for el in root])
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return StreamTarget(stream.get("url", ""), params, connect.get("action"))


def _check_amd(answered_by: str, outbound: bool, machine_detection: str | None) -> None:
    if not outbound:
        raise ValueError("Twilio reports AnsweredBy only on calls placed through the Calls API")
    modes = [machine_detection] if machine_detection else list(ANSWERED_BY)
    if machine_detection and machine_detection not in ANSWERED_BY:
        raise ValueError(f"MachineDetection must be one of {', '.join(ANSWERED_BY)}")
    if not any(answered_by in answered_by_values(mode) for mode in modes):
        known = sorted({v for mode in modes for v in answered_by_values(mode)})
        raise ValueError(
            f"AnsweredBy {answered_by!r} is not one Twilio reports with MachineDetection="
            f"{'|'.join(modes)}: {', '.join(known)}"
        )


def after_stream(target: StreamTarget, auth_token: str, call_sid: str) -> AfterStream:
    """Request the ``<Connect action>`` URL as Twilio does when the stream closes."""
    if not target.action:
        return AfterStream(["Hangup"], "")
    xml = _post_signed(
        target.action,
        {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress"},
        auth_token,
    )
    root = ET.fromstring(xml)
    said = " ".join((el.text or "") for el in root.findall("Say"))
    return AfterStream([el.tag for el in root], said)


# -- calls the Twilio simulator runs (it is Twilio: it fetches TwiML and opens the stream) ----
def _control(sim_url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{sim_url.rstrip('/')}/_sandbox/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


@dataclass
class SimCall:
    """A call the Twilio simulator places to the bot and runs: TwiML followed, updates
    obeyed. ``log()`` is its timeline (``GET /_sandbox/calls/<sid>/log``)."""

    sim_url: str
    sid: str

    def log(self) -> dict:
        return _control(self.sim_url, "GET", f"calls/{self.sid}/log")

    def speak(self, ms: int = 1200) -> dict:
        return _control(self.sim_url, "POST", f"calls/{self.sid}/speak", {"ms": ms})

    def hang_up(self) -> dict:
        return _control(self.sim_url, "POST", f"calls/{self.sid}", {"status": "completed"})


def call_in(sim_url: str, voice_url: str | None = None, from_: str = "+14155550100") -> SimCall:
    """Have the simulator call the bot (``POST /_sandbox/calls``) and run the call."""
    body = {"from": from_, **({"url": voice_url} if voice_url else {})}
    return SimCall(sim_url, _control(sim_url, "POST", "calls", body)["call_sid"])
