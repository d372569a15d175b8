"""Api 2010 Calls: create, fetch, list, update (hang up / redirect).

Validation follows Twilio's order and codes: missing To 21201, missing From 21213, no
Url/Twiml/ApplicationSid 21205, bad To 21211, bad From 21212, From not on the account 21210,
redirecting a call that is not in progress 21220, a bad ``MachineDetection`` value or AMD
tuning parameter 21234 (https://www.twilio.com/docs/api/errors/21234). A created call stays
``queued`` until the sandbox control endpoints ring or answer it (there is no phone network).

``SendDigits`` switches answering-machine detection off, as on Twilio. The Call resource and its
status moves are :mod:`sandbox.twilio_sim.call_model`'s.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, request

from sandbox.twilio_sim import rules
from sandbox.twilio_sim.call_model import ANSWERED_BY, NOT_ANSWERED, Next, new_call, set_status
from sandbox.twilio_sim.context import form_value, require_account, sim
from sandbox.twilio_sim.errors import TwilioError, not_found
from sandbox.twilio_sim.records import public, rfc2822_now

bp = Blueprint("calls", __name__)
PREFIX = "/2010-04-01/Accounts/<account_sid>"
UPDATE_STATUSES = ("canceled", "completed")  # the spec's call_enum_update_status
#: AMD tuning parameters and their documented ranges (error 21234's page).
AMD_RANGES: dict[str, tuple[int, int]] = {
    "MachineDetectionTimeout": (3, 59),
    "MachineDetectionSpeechThreshold": (1000, 6000),
    "MachineDetectionSpeechEndThreshold": (500, 5000),
    "MachineDetectionSilenceTimeout": (2000, 10000),
}
APPLICATION_SID = re.compile(r"^AP[0-9a-fA-F]{32}$")
CALLBACK_EVENTS = {"initiated", "ringing", "answered", "completed"}
MAX_TWIML_CHARS = 4000


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _machine_detection() -> str | None:
    """The effective MachineDetection, or ``None``; a bad value or range is 21234."""
    amd = form_value("MachineDetection")
    if amd and amd not in ANSWERED_BY:
        raise TwilioError(
            400,
            21234,
            f"Invalid Machine Detection configuration value: MachineDetection {amd!r} is not "
            "one of Enable, DetectMessageEnd",
        )
    for name, (low, high) in AMD_RANGES.items():
        raw = form_value(name)
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
            raise TwilioError(
                400,
                21234,
                f"Invalid Machine Detection configuration value: {name} must be an integer "
                f"between {low} and {high}",
            )
    # Twilio: "If both SendDigits and MachineDetection are provided, MachineDetection is ignored."
    return amd if amd and not form_value("SendDigits") else None


def _method(name: str) -> str:
    value = (form_value(name) or "POST").upper()
    if value not in ("GET", "POST"):
        raise TwilioError(400, 21200, f"{name} must be GET or POST")
    return value


def _validate_create() -> dict[str, Any]:
    to, from_ = form_value("To"), form_value("From")
    url, twiml, app_sid = form_value("Url"), form_value("Twiml"), form_value("ApplicationSid")
    if not to:
        raise TwilioError(400, 21201)
    if not from_:
        raise TwilioError(400, 21213)
    if not (url or twiml or app_sid):
        raise TwilioError(400, 21205)
    if app_sid and not APPLICATION_SID.match(app_sid):
        # the spec's pattern for ApplicationSid; no specific Twilio code is documented
        raise TwilioError(400, 20001, f"Invalid ApplicationSid: {app_sid}")
    if not (rules.E164.match(to) or to.startswith(("client:", "sip:"))):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not (rules.E164.match(from_) or from_.startswith("client:")):
        raise TwilioError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
    if rules.E164.match(from_) and from_ not in sim().cfg.phone_numbers:
        raise TwilioError(
            400,
            21210,
            f"The source phone number provided, {from_}, is not yet verified for your account. "
            "You may only make calls from phone numbers that you've verified or purchased "
            "from Twilio.",
        )
    if url and not _valid_url(url):
        raise TwilioError(400, 21205, f"Url is not a valid URL: {url}")
    if twiml and len(twiml) > MAX_TWIML_CHARS:
        raise TwilioError(400, 21200, f"Twiml must be at most {MAX_TWIML_CHARS} characters")
    amd = _machine_detection()
    events = request.form.getlist("StatusCallbackEvent")
    bad = [e for e in events if e not in CALLBACK_EVENTS]
    if bad:
        raise TwilioError(400, 21626, f"Invalid StatusCallbackEvent: {', '.join(bad)}")
    callback = form_value("StatusCallback")
    if callback and not _valid_url(callback):
        raise TwilioError(400, 21609, f"Invalid StatusCallback URL: {callback}")
    return {
        "url": url,
        "method": _method("Method"),
        "twiml": None if url else twiml,  # Twilio: with both, Twiml is ignored
        "application_sid": app_sid,
        "machine_detection": amd,
        "async_amd": form_value("AsyncAmd"),
        "status_callback": callback,
        "status_callback_event": events,
        "status_callback_method": _method("StatusCallbackMethod"),
        "timeout": form_value("Timeout"),
        "params": request.form.to_dict(flat=False),
        "updates": [],
    }


def render_call(call: dict[str, Any]) -> dict[str, Any]:
    return public(call)


@bp.post(f"{PREFIX}/Calls.json")
def create_call(account_sid: str) -> tuple[dict[str, Any], int]:
    require_account(account_sid)
    extra = _validate_create()
    s = sim()
    to, from_ = form_value("To") or "", form_value("From") or ""
    call = new_call(account_sid, to, from_, "outbound-api", extra)
    with s.store.lock:
        s.store.calls[call["sid"]] = call
    return render_call(call), 201


def get_call(account_sid: str, sid: str) -> dict[str, Any]:
    require_account(account_sid)
    call = sim().store.calls.get(sid)
    if call is None:
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json")
    return call


@bp.get(f"{PREFIX}/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str) -> dict[str, Any]:
    return render_call(get_call(account_sid, sid))


@bp.get(f"{PREFIX}/Calls.json")
def list_calls(account_sid: str) -> dict[str, Any]:
    """Api 2010 list shape (``*_page_uri`` keys, newest first)."""
    require_account(account_sid)
    store = sim().store
    with store.lock:
        calls = [
            c
            for c in reversed(store.calls.values())
            if all(request.args.get(k) in (None, c[k.lower()]) for k in ("To", "From", "Status"))
        ]
    size = min(max(int(request.args.get("PageSize", 50)), 1), 1000)
    number = max(int(request.args.get("Page", 0)), 0)
    chunk = calls[number * size : (number + 1) * size]
    uri = f"/2010-04-01/Accounts/{account_sid}/Calls.json"
    more = len(calls) > (number + 1) * size
    return {
        "calls": [render_call(c) for c in chunk],
        "start": number * size,
        "end": number * size + max(len(chunk) - 1, 0),
        "page": number,
        "page_size": size,
        "uri": f"{uri}?PageSize={size}&Page={number}",
        "first_page_uri": f"{uri}?PageSize={size}&Page=0",
        "next_page_uri": f"{uri}?PageSize={size}&Page={number + 1}" if more else None,
        "previous_page_uri": f"{uri}?PageSize={size}&Page={number - 1}" if number else None,
    }


@bp.post(f"{PREFIX}/Calls/<sid>.json")
def update_call(account_sid: str, sid: str) -> dict[str, Any]:
    """UpdateCall: ``Status`` hangs up; ``Twiml`` or ``Url`` redirects a call in progress.

    A call the sandbox is running (:mod:`sandbox.twilio_sim.callflow`) follows at once: its
    stream gets ``stop`` and closes, then the new TwiML runs (or the call ends)."""
    s = sim()
    with s.store.lock:
        call = get_call(account_sid, sid)
        status, url, twiml = form_value("Status"), form_value("Url"), form_value("Twiml")
        if status is not None and status not in UPDATE_STATUSES:
            raise TwilioError(
                400, 21200, f"Invalid Status: {status}. Must be one of canceled, completed"
            )
        if url and twiml:
            raise TwilioError(400, 21200, "Twiml and Url are mutually exclusive")
        if url and not _valid_url(url):
            raise TwilioError(400, 21205, f"Url is not a valid URL: {url}")
        if twiml and len(twiml) > MAX_TWIML_CHARS:
            raise TwilioError(400, 21200, f"Twiml must be at most {MAX_TWIML_CHARS} characters")
        method = _method("Method")
        current = call["status"]
        if (url or twiml) and not status and current != "in-progress":
            raise TwilioError(400, 21220)
        call["_extra"]["updates"].append(request.form.to_dict(flat=False))
        flow = s.flows.get(sid)
        nxt = None
        if status == "completed" and current == "in-progress":
            set_status(call, "completed")
            nxt = ("hangup", "", "update")
        elif status and current in NOT_ANSWERED:
            # Twilio: both values hang up a call that has not been answered yet
            set_status(call, "canceled")
            nxt = ("hangup", "", "update")
        elif not status and (url or twiml):
            call["_extra"].update(url=url, method=method, twiml=twiml if not url else None)
            nxt = ("url", url, method) if url else ("twiml", twiml or "", "POST")
        # canceled on a call in progress, or any Status on an ended call: nothing to do
        call["date_updated"] = rfc2822_now()
        rendered = render_call(call)
    if flow is not None and nxt is not None:
        kind, value, how = nxt
        flow.update(Next(kind, value, how if kind == "url" else "POST", why="update"))
    return rendered
