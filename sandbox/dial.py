"""Place a simulated call the way Twilio does: ask ``/twilio/voice`` for TwiML (a signed
webhook), then open the ``<Stream>`` it names with the ``<Parameter>``s it lists.

When the stream ends, ask the ``<Connect action>`` URL what to do next, as Twilio would, so
the caller hears the apology or a plain hang-up.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator


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
) -> StreamTarget:
    """POST /twilio/voice like Twilio and read the stream URL and parameters from the TwiML."""
    form = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": from_,
        "To": to,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    if answered_by:
        form["AnsweredBy"] = answered_by
    root = ET.fromstring(_post_signed(web_url.rstrip("/") + "/twilio/voice", form, auth_token))
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if stream is None or not stream.get("url"):
        raise RuntimeError("the voice webhook did not return <Connect><Stream>")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return StreamTarget(stream.get("url", ""), params, connect.get("action"))


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
