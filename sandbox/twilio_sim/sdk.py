"""Point the official twilio SDK at another origin (the simulator).

The SDK has no base-URL option: each domain hard-codes ``https://<product>.twilio.com``. This
HTTP client rewrites scheme and host of every URL it is asked to fetch and keeps path and
query, which also covers paging, because ``Page.next_page()`` requests the server-returned
``meta.next_page_url`` through the same client. It also sets a timeout (the SDK's default is
none at all).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


class RebasedHttpClient(TwilioHttpClient):
    """Send every request to ``base_url`` (scheme + host[:port]), keeping path and query."""

    def __init__(self, base_url: str | None, timeout: float | None = 10.0, **kwargs: object):
        super().__init__(timeout=timeout, **kwargs)  # type: ignore[arg-type]
        self._base = urlsplit(base_url) if base_url else None

    def rebase(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
