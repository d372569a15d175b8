"""What one client, or everyone together, may hold on a relay process, performed end to end on
real relay processes: live-session caps, slow headers, idle sessions, refused upgrades against
the upgrade rate, /metrics behind a bearer token, and the untrusted X-Forwarded-For warning.
"""

from __future__ import annotations

import json
import socket

import pytest
import websocket

from tests.relay.conftest import Relay, fresh_ip, http, metric, mint, wait_closed, wait_for

pytestmark = pytest.mark.usefixtures("redis_url")

CLEAR = '{"type":"input_audio_buffer.clear"}'
METRICS_TOKEN = "metrics-secret-for-tests"


@pytest.fixture(autouse=True)
def clean_echo(echo):
    echo.reset()


def alive(ws: websocket.WebSocket) -> bool:
    """The session still relays: an event goes to the echo upstream and comes back."""
    ws.send(CLEAR)
    while (got := ws.recv()) != CLEAR:
        assert json.loads(got)["type"] != "error", got
    return True


def refused(relay: Relay, **kwargs) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        relay.browser(**kwargs).close()
    return err.value


def live_slots(relay: Relay) -> int:
    status, _, body = http("GET", relay.http_base + "/healthz")
    assert status == 200, body
    return json.loads(body)["sessions"]


# ==== live-session caps ========================================================================
def test_fourth_session_from_one_ip_is_429_and_the_first_three_stay_up(start_relay, echo):
    relay = start_relay(echo.url, name="per-ip", TRUSTED_PROXY_COUNT="1")  # 3 per IP (default)
    ip = fresh_ip()
    first = [relay.browser(ip=ip) for _ in range(3)]
    assert all(alive(ws) for ws in first)
    err = refused(relay, ip=ip)
    assert err.status_code == 429 and b"sessions_per_ip" in err.resp_body
    assert "retry-after" in err.resp_headers
    line = next(ln for ln in relay.log().splitlines() if "reason=sessions_per_ip" in ln)
    assert "upgrade refused (429)" in line and ip in line
    assert all(alive(ws) for ws in first)  # the three were not disturbed
    other = relay.browser(ip=fresh_ip())  # another address is unaffected
    assert alive(other)
    reason = 'relay_upgrades_refused_total{reason="sessions_per_ip"}'
    assert metric(relay, reason) == 1
    first[0].close()  # a closed session gives its slot back
    wait_for(lambda: live_slots(relay) == 3)
    again = relay.browser(ip=ip)
    assert alive(again)
    for ws in (*first[1:], other, again):
        ws.close()


def test_a_full_process_refuses_browsers_503_and_closes_calls_1013(start_relay, echo):
    relay = start_relay(echo.url, name="full", TRUSTED_PROXY_COUNT="1", RELAY_MAX_SESSIONS="2")
    held = [relay.browser(ip=fresh_ip()) for _ in range(2)]
    assert all(alive(ws) for ws in held)
    err = refused(relay, ip=fresh_ip())
    assert err.status_code == 503 and b"relay_full" in err.resp_body
    # A Twilio stream is accepted and closed, so Twilio plays the after-TwiML apology.
    call = relay.browser(token=mint("twilio"), origin=None, protocols=["audio"], signed=True)
    assert wait_closed(call)[:2] == (1013, "relay_full")
    assert metric(relay, 'relay_upgrades_refused_total{reason="relay_full"}') == 2
    assert echo.open_count() == 2  # neither refusal reached OpenAI
    held[0].close()
    wait_for(lambda: live_slots(relay) == 1)
    admitted = relay.browser(ip=fresh_ip())
    assert alive(admitted) and alive(held[1])
    admitted.close()
    held[1].close()


# ==== timeouts =================================================================================
def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(15)  # a ceiling for a broken relay, not a measurement
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.fixture(scope="module")
def quick(start_relay, echo) -> Relay:
    return start_relay(
        echo.url,
        name="quick",
        TRUSTED_PROXY_COUNT="1",
        RELAY_HEADER_TIMEOUT_SECONDS="1",
        BROWSER_IDLE_SECONDS="1",
    )


@pytest.mark.parametrize(
    "partial",
    [b"GET /token/abc HT", b"GET /token/abc HTTP/1.1\r\nHost: relay\r\nUpgrade: web"],
    ids=["request-line", "headers"],
)
def test_slow_headers_are_closed_with_408(quick, partial):
    before = metric(quick, "relay_header_timeouts_total")
    with socket.create_connection(("127.0.0.1", quick.port)) as sock:
        sock.sendall(partial)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"header_timeout" in answer
    assert "reason=header_timeout" in quick.log()
    assert metric(quick, "relay_header_timeouts_total") == before + 1
    assert http("GET", quick.http_base + "/healthz")[0] == 200  # the relay serves on


def test_an_idle_browser_session_is_closed_1000(quick, echo):
    ws = quick.browser()
    code, reason, _ = wait_closed(ws)
    assert (code, reason) == (1000, "idle_timeout")
    wait_for(lambda: echo.open_count() == 0)
    assert "reason=idle_timeout" in quick.log()


def test_a_session_outlives_the_header_deadline(start_relay, echo):
    relay = start_relay(echo.url, name="headers-only", RELAY_HEADER_TIMEOUT_SECONDS="1")
    ws = relay.browser()
    assert alive(ws)
    with socket.create_connection(("127.0.0.1", relay.port)) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\n")
        assert read_until_closed(slow).startswith(b"HTTP/1.1 408")  # a deadline has passed
    assert alive(ws)  # ...and the upgraded session was not under it
    ws.close()


# ==== refused upgrades use up the upgrade allowance ============================================
def test_refused_upgrades_count_against_the_upgrade_limit(start_relay, echo):
    relay = start_relay(
        echo.url, name="rate3", TRUSTED_PROXY_COUNT="1", UPGRADE_RATE_LIMIT="3 per minute"
    )
    ip = fresh_ip()
    assert refused(relay, ip=ip, path="/token/not-a-token").status_code == 401
    assert refused(relay, ip=ip, origin="https://evil.example").status_code == 403
    assert refused(relay, ip=ip, token=mint(ttl=-1)).status_code == 401
    err = refused(relay, ip=ip)  # a good token and Origin, but the allowance is used up
    assert err.status_code == 429 and b"rate_limited" in err.resp_body
    assert 1 <= int(err.resp_headers["retry-after"]) <= 60
    assert echo.conns == []  # none of the four reached OpenAI
    ws = relay.browser(ip=fresh_ip())
    assert alive(ws)
    ws.close()


# ==== /metrics =================================================================================
def test_metrics_need_the_bearer_token_when_one_is_set(start_relay, echo):
    relay = start_relay(echo.url, name="metrics", METRICS_TOKEN=METRICS_TOKEN)
    url = relay.http_base + "/metrics"
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        status, got, body = http("GET", url, headers=headers)
        assert status == 401 and b"METRICS_TOKEN" in body and METRICS_TOKEN.encode() not in body
        assert got.get("WWW-Authenticate") == "Bearer"
    status, _, body = http("GET", url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and b"relay_sessions_active" in body
    log = relay.log()
    assert log.count("reason=metrics_auth") == 3 and METRICS_TOKEN not in log
    assert http("GET", relay.http_base + "/healthz")[0] == 200  # health stays open


def test_metrics_are_open_without_a_token(start_relay, echo):
    relay = start_relay(echo.url, name="metrics-open")
    status, _, body = http("GET", relay.http_base + "/metrics")
    assert status == 200 and b"relay_upgrades_refused_total" in body


# ==== X-Forwarded-For without TRUSTED_PROXY_COUNT =============================================
def test_forwarded_for_without_a_trusted_proxy_is_warned_about_once(start_relay, echo):
    relay = start_relay(echo.url, name="behind-router")  # TRUSTED_PROXY_COUNT=0 (default)
    sessions = [relay.browser(ip=fresh_ip()) for _ in range(3)]
    wait_for(lambda: relay.log().count("browser session started") == 3)
    assert relay.log().count("TRUSTED_PROXY_COUNT=0") == 1
    line = next(ln for ln in relay.log().splitlines() if "TRUSTED_PROXY_COUNT=0" in ln)
    assert "X-Forwarded-For" in line and "127.0.0.1" in line
    for ws in sessions:
        ws.close()
