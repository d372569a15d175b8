"""A staff member's browser without a browser: an HTTP client that keeps the console's
cookie (Secure included: the tests talk plain HTTP to 127.0.0.1), reads CSRF tokens from the
pages, and signs in with the code the Twilio simulator saw texted."""

from __future__ import annotations

import http.client
import json
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tests.support import http_json, wait_for

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODE = re.compile(r"code: (\d{6})\b")


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class StaffClient:
    """Requests to the web process with the session cookie kept by hand."""

    def __init__(self, web_url: str):
        parts = urlsplit(web_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, quote(path, safe="/?=&%"), body=body, headers=sent)
            raw = conn.getresponse()
            response = Response(raw.status, raw.headers, raw.read())
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(header)
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "expires=Thu, 01 Jan 1970" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, headers=headers)

    def token(self, path: str = "/staff/login") -> str:
        page = self.get(path)
        found = _TOKEN.search(page.text)
        assert found, f"no CSRF token on {path} ({page.status})"
        return found.group(1)

    def post(self, path: str, form: dict[str, str], *, token_from: str | None = None) -> Response:
        """A POST with the token a page of ``token_from`` carries (None: no token at all)."""
        data = dict(form)
        if token_from is not None:
            data["csrf_token"] = self.token(token_from)
        return self.request("POST", path, data, headers={"Referer": f"http://{self.host}"})


def texted_codes(twilio_url: str, number: str) -> list[str]:
    """The login codes the Twilio simulator has texted to ``number``, oldest first."""
    sms = http_json("GET", twilio_url + "/_sandbox/state")["sms"]
    return [m.group(1) for s in sms if s["to"] == number for m in [_CODE.search(s["body"])] if m]


def sign_in(client: StaffClient, twilio_url: str, number: str) -> Response:
    """The whole sign-in: ask for a code, read it from the simulator, send it back."""
    before = len(texted_codes(twilio_url, number))
    asked = client.post("/staff/login", {"number": number}, token_from="/staff/login")
    assert asked.status == 200, asked.text
    codes = wait_for(
        lambda: (lambda c: c if len(c) > before else None)(texted_codes(twilio_url, number)),
        timeout=30,
    )
    done = client.post(
        "/staff/login/code", {"number": number, "code": codes[-1]}, token_from="/staff/login"
    )
    assert done.status == 303, done.text
    return done
