"""Refusals before the upgrade, and the plain-HTTP routes, against a real relay process.

Every refusal must carry its own status, a reason in the body and one log line with the
reason and the client IP - and never the token.
"""

from __future__ import annotations

import os

import pytest
import websocket

from common import tokens
from tests.relay.conftest import Relay, fresh_ip, http, mint

pytestmark = pytest.mark.usefixtures("redis_url")


#: These tests open and close sessions in quick succession from one IP to test the upgrade
#: *rate*; the live-session cap (test_relay_limits.py) would race with each close.
MANY_LIVE = {"BROWSER_SESSIONS_PER_IP": "100"}


@pytest.fixture(scope="module")
def relay(start_relay, echo) -> Relay:
    # One trusted proxy hop, so each test can pick its client IP with X-Forwarded-For; the
    # localhost origins a developer's page uses (off by default outside development).
    return start_relay(
        echo.url, TRUSTED_PROXY_COUNT="1", ALLOW_LOCALHOST_ORIGINS="true", **MANY_LIVE
    )


@pytest.fixture(scope="module")
def direct_relay(start_relay, echo) -> Relay:
    # No trusted proxy: X-Forwarded-For must be ignored. APP_ENV is production (the default).
    return start_relay(echo.url, name="direct", **MANY_LIVE)


def refused(relay: Relay, **kwargs) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        relay.browser(**kwargs).close()
    return err.value


def assert_refusal(relay: Relay, err, status: int, reason: str, ip: str, token: str = "") -> None:
    assert err.status_code == status
    assert reason in err.resp_body.decode()
    log = relay.log()
    line = next(
        line for line in reversed(log.splitlines()) if f"reason={reason}" in line and ip in line
    )
    assert "upgrade refused" in line
    if token:
        assert token not in log


# ==== plain HTTP ===============================================================================
def test_token_and_auth_paths_answer_200(relay):
    for path in (f"/token/{mint()}", "/auth/anything", "/token/"):
        status, _, body = http("GET", relay.http_base + path)
        assert (status, body) == (200, b"OK\n")


def test_healthz_and_metrics(relay):
    status, _, body = http("GET", relay.http_base + "/healthz")
    assert status == 200 and b'"redis":"ok"' in body
    status, _, body = http("GET", relay.http_base + "/metrics")
    assert status == 200 and b"relay_sessions_active" in body


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/v1/realtime"), ("POST", "/x")])
def test_other_plain_http_is_426(relay, method, path):
    status, headers, body = http(
        method, relay.http_base + path, body={} if method == "POST" else None
    )
    assert status == 426 and b"Upgrade" in body
    assert headers.get("Upgrade") == "websocket"


def test_stray_twilio_post_gets_200(relay):
    status, _, body = http("POST", relay.http_base + "/", {}, {"X-Twilio-Signature": "abc"})
    assert (status, body) == (200, b"ok\n")
    assert "reason=twilio_post" in relay.log()


# ==== 401: token ===============================================================================
def test_missing_token_is_401(relay):
    ip = fresh_ip()
    err = refused(relay, path="/", ip=ip)
    assert_refusal(relay, err, 401, "missing_token", ip)


def test_garbage_token_is_401(relay):
    ip = fresh_ip()
    foreign = tokens.mint(os.urandom(32), "client")  # right shape, wrong key
    err = refused(relay, path=f"/token/{foreign}", ip=ip)
    assert_refusal(relay, err, 401, "token_decrypt_failed", ip)
    err = refused(relay, path="/token/not-a-real-token", ip=ip)
    assert_refusal(relay, err, 401, "token_bad_length", ip)


def test_expired_token_is_401(relay):
    ip, token = fresh_ip(), mint(ttl=-1)
    err = refused(relay, token=token, ip=ip)
    assert_refusal(relay, err, 401, "token_expired", ip, token)


def test_a_ten_year_token_is_401_whoever_minted_it(relay):
    """A leaked long-lived token would open sessions for as long as it says: anything meant to
    live longer than TOKEN_MAX_LIFETIME_SECONDS (600) is refused, however well it decrypts."""
    ip, token = fresh_ip(), mint(ttl=10 * 365 * 24 * 3600)
    err = refused(relay, token=token, ip=ip)
    assert_refusal(relay, err, 401, "token_lifetime", ip, token)


def test_twilio_token_cannot_open_a_browser_session(relay):
    ip, token = fresh_ip(), mint("twilio")
    err = refused(relay, token=token, ip=ip)
    assert_refusal(relay, err, 401, "token_wrong_origin", ip, token)


def test_token_in_query_and_auth_path_are_accepted(relay):
    relay.browser(path=f"/?auth={mint()}").close()
    relay.browser(path=f"/auth/{mint()}").close()


# ==== 403: Origin ==============================================================================
@pytest.mark.parametrize(
    "origin", ["https://gateframes.com.evil.example", "https://evil.example", None]
)
def test_origin_not_on_the_allowlist_is_403(relay, origin):
    ip, token = fresh_ip(), mint()
    err = refused(relay, token=token, ip=ip, origin=origin)
    assert_refusal(relay, err, 403, "origin_not_allowed", ip, token)


def test_localhost_dev_origin_is_allowed(relay):
    relay.browser(origin="http://localhost:5173").close()


def test_localhost_origin_is_refused_outside_development(direct_relay):
    token = mint()
    err = refused(direct_relay, token=token, origin="http://localhost:5173")
    assert_refusal(direct_relay, err, 403, "origin_not_allowed", "127.0.0.1", token)


# ==== 401: replay ==============================================================================
def test_a_token_opens_one_session_only(relay):
    ip, token = fresh_ip(), mint()
    relay.browser(token=token, ip=ip).close()
    err = refused(relay, token=token, ip=ip)
    assert_refusal(relay, err, 401, "token_replayed", ip, token)


def test_a_refused_attempt_does_not_burn_the_token(relay):
    token = mint()
    refused(relay, token=token, origin="https://evil.example")
    relay.browser(token=token).close()


# ==== 429: rate ================================================================================
def test_eleventh_upgrade_in_a_minute_is_429_with_retry_after(relay):
    ip = fresh_ip()
    for _ in range(10):
        relay.browser(ip=ip).close()
    err = refused(relay, ip=ip)
    assert_refusal(relay, err, 429, "rate_limited", ip)
    assert 1 <= int(err.resp_headers["retry-after"]) <= 60
    relay.browser(ip=fresh_ip()).close()  # other clients are unaffected


def test_limit_is_shared_by_every_relay_process(relay, start_relay, echo):
    other = start_relay(echo.url, name="second", TRUSTED_PROXY_COUNT="1", **MANY_LIVE)
    ip = fresh_ip()
    for i in range(10):
        (relay if i % 2 else other).browser(ip=ip).close()
    assert refused(other, ip=ip).status_code == 429
    assert refused(relay, ip=ip).status_code == 429


def test_forwarded_for_is_not_trusted_without_a_proxy_setting(direct_relay):
    for _ in range(10):
        direct_relay.browser(ip=fresh_ip()).close()  # a spoofed header each time
    err = refused(direct_relay, ip=fresh_ip())
    assert_refusal(direct_relay, err, 429, "rate_limited", "127.0.0.1")
