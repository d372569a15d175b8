"""Twilio REST error bodies, as the SDK's ``TwilioRestException`` parses them.

Twilio answers every failure with ``{"code", "message", "more_info", "status"}``; the app
branches on ``status`` and ``code``, so the simulator must use the codes Twilio documents
(https://www.twilio.com/docs/api/errors/<code>).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

#: Default messages for codes raised by the simulator or requested through a fault.
MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: (
        "Url parameter is required. For more information, see http://www.twilio.com/docs/api/twiml"
    ),
    21210: "The source phone number provided is not yet verified for your account",
    21211: "Invalid 'To' Phone Number",
    21212: "Invalid 'From' Phone Number",
    21213: "No 'From' number is specified",
    21215: "Account not authorized to call this number (geo permissions)",
    21220: "Call is not in-progress. Cannot redirect.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The From phone number is not a valid, SMS-capable number for your account",
    21617: "The concatenated message body exceeds the 1600 character limit",
    21626: "Invalid 'StatusCallbackEvent'",
    50204: "Identity not provided",
    50353: "Conversation with provided unique name already exists",
    50377: "Can't update conversation as it's in final closed state",
    50384: "Initial state can't be 'closed'",
    50211: "Identity parameter not acceptable for this Participant",
    50407: "Invalid messaging binding address",
    50408: "Invalid participant proxy address",
    50411: "Participant address is empty",
    50416: "A binding for this participant and proxy address already exists",
    50420: "Participant Messaging Binding type does not support all of the provided parameters",
    50432: "Participant not found",
    50433: "Participant already exists",
    50434: "Participant projected address not provided",
    50435: "Group MMS activation failed",
    50436: "Participant limit exceeded for group conversation",
    50437: "Group Participant already exists",
    50438: "Group conversation with given participant list already exists",
    50503: "Message body not provided",
    50513: "Message author should be among Group MMS participants.",
}

#: The Twilio code a bare HTTP status maps to when a fault names no code.
STATUS_CODES: dict[int, int] = {400: 20001, 401: 20003, 404: 20404, 429: 20429, 500: 20500}


class TwilioError(Exception):
    """Raised anywhere in a request; rendered as Twilio's JSON error body."""

    def __init__(self, status: int, code: int, message: str | None = None):
        super().__init__(message or MESSAGES.get(code, "Error"))
        self.status = status
        self.code = code
        self.message = message or MESSAGES.get(code, f"HTTP {status}")

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message)


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def error_response(status: int, code: int | None = None, message: str | None = None) -> Response:
    code = code if code is not None else STATUS_CODES.get(status, 20000 + status)
    text = message or MESSAGES.get(code) or f"Simulated HTTP {status}"
    resp = jsonify(error_body(status, code, text))
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return resp


def not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")
