"""The Twilio REST client, configured once.

The twilio SDK has no base-URL option: each domain hard-codes its host. To reach the local
simulator (``TWILIO_API_BASE_URL``) we rewrite scheme and host in the HTTP client, which also
covers pagination, since ``next_page_url`` is requested through the same client. The SDK's
default is no timeout at all; a stuck Twilio call must not pin a worker, so we set one.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from common.config import Config, get_config


class RebasedHttpClient(TwilioHttpClient):
    """Send every request to ``base_url`` (scheme + host[:port]), keeping path and query.
    The simulator's own tests use this same class, so they exercise the production client."""

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


def make_client(cfg: Config) -> Client:
    cfg.require("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    http = RebasedHttpClient(cfg.twilio_api_base_url or None, timeout=cfg.twilio_timeout_seconds)
    return Client(cfg.twilio_account_sid, cfg.twilio_auth_token, http_client=http)


@functools.cache
def get_twilio() -> Client:
    """The process-wide client (created lazily, after a Celery fork)."""
    return make_client(get_config())
