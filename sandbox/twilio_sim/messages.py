"""Api 2010 Messages (Programmable Messaging): create and fetch an SMS.

The gateway sends one kind of plain SMS: the voicemail notice to ``VOICEMAIL_NOTIFY_TO``.
Validation follows Twilio's order and codes: missing To 21604, neither From nor
MessagingServiceSid 21603, no Body and no MediaUrl 21602, bad To 21211, From not an
SMS-capable number of the account 21606, a body over 1 600 characters 21617. A created
message is ``queued``; there is no carrier here to deliver it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from sandbox.twilio_sim import rules
from sandbox.twilio_sim.context import form_value, require_account, sim
from sandbox.twilio_sim.errors import TwilioError, not_found
from sandbox.twilio_sim.records import new_sid, rfc2822_now
from sandbox.twilio_sim.store import MAX_BODY_CHARS

bp = Blueprint("messages", __name__)
PREFIX = "/2010-04-01/Accounts/<account_sid>"
GSM_SEGMENT, UCS2_SEGMENT = 153, 67  # characters per part of a concatenated SMS


def _segments(body: str) -> int:
    if len(body) <= (160 if body.isascii() else 70):
        return 1
    per = GSM_SEGMENT if body.isascii() else UCS2_SEGMENT
    return -(-len(body) // per)


def _validate() -> tuple[str, str, str, list[str]]:
    to, from_ = form_value("To"), form_value("From")
    service, body = form_value("MessagingServiceSid"), form_value("Body") or ""
    media = [u for u in (form_value("MediaUrl"),) if u]
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not (from_ or service):
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not (body or media):
        raise TwilioError(400, 21602, "Message body is required.")
    if not rules.E164.match(to):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if from_ and from_ not in sim().cfg.phone_numbers:
        raise TwilioError(
            400,
            21606,
            f"The From phone number {from_} is not a valid, SMS-capable inbound phone number "
            "or short code for your account.",
        )
    if len(body) > MAX_BODY_CHARS:
        raise TwilioError(400, 21617)
    return to, from_ or sim().cfg.phone_number, body, media


@bp.post(f"{PREFIX}/Messages.json")
def create_message(account_sid: str) -> tuple[dict[str, Any], int]:
    require_account(account_sid)
    to, from_, body, media = _validate()
    s = sim()
    sid, now = new_sid("SM"), rfc2822_now()
    base = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
    message = {
        "sid": sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "to": to,
        "from": from_,
        "messaging_service_sid": form_value("MessagingServiceSid"),
        "body": body,
        "num_segments": str(_segments(body)),
        "num_media": str(len(media)),
        "direction": "outbound-api",
        "status": "queued",
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "uri": f"{base}.json",
        "subresource_uris": {"media": f"{base}/Media.json"},
    }
    with s.store.lock:
        s.store.messages[sid] = message
    return message, 201


@bp.get(f"{PREFIX}/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str) -> dict[str, Any]:
    require_account(account_sid)
    message = sim().store.messages.get(sid)
    if message is None:
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
    return message
