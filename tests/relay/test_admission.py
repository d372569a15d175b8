"""Admission without a network: the pure checks, and their order with a fake store."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import redis

from common import tokens
from common.config import Config
from relay.admission import (
    Admitted,
    Refusal,
    admit,
    check_token,
    client_ip,
    first_subprotocol,
    origin_allowed,
)
from relay.capacity import Capacity

KEY = os.urandom(32)
CFG = Config(encryption_key=KEY)
NOW = 1_800_000_000_000
GOOD = "https://gateframes.com"


class FakeGate:
    def __init__(self, wait: int | None = None, fail: bool = False):
        self.wait, self.fail = wait, fail
        self.hits: list[str] = []
        self.nonces: dict[str, int] = {}

    def hit_upgrade(self, ip: str) -> int | None:
        if self.fail:
            raise redis.ConnectionError("down")
        self.hits.append(ip)
        return self.wait

    def claim_nonce(self, nonce: str, ttl_ms: int) -> bool:
        if self.fail:
            raise redis.ConnectionError("down")
        if nonce in self.nonces:
            return False
        self.nonces[nonce] = ttl_ms
        return True

    def ping(self) -> None:
        pass


def run(gate: FakeGate, token: str | None, origin: str | None = GOOD, cfg: Config = CFG, **kw):
    return admit(
        cfg,
        gate,
        path=f"/token/{token}" if token else "/",
        query_string="",
        origin=origin,
        ip="203.0.113.7",
        protocols=kw.pop("protocols", None),
        now_ms=NOW,
        **kw,
    )


def mint(origin: str = "client", ttl: int = 300, now: int = NOW) -> str:
    return tokens.mint(KEY, origin, ttl, now_ms=now)


# ==== Origin ===================================================================================
@pytest.mark.parametrize(
    "origin",
    [
        "https://www.gateframes.com",
        "https://gateframes.com",
        "https://www.ricslist.com",
        "https://ricslist.com",
        "http://localhost:1024",
        "http://localhost:3000",
        "http://localhost:65535",
    ],
)
def test_allowed_origins(origin):
    assert origin_allowed(origin, CFG.allowed_origins, True)


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "null",
        "https://gateframes.com.evil.example",
        "https://evil.example?https://gateframes.com",
        "https://gateframes.com/",
        "https://gateframes.com:443",
        "http://gateframes.com",
        "https://GATEFRAMES.com",
        "http://localhost:1023",
        "http://localhost:65536",
        "http://localhost:0",
        "http://localhost:01024",
        "http://localhost:3000/",
        "http://localhost:３０００",
        "http://localhost:",
        "http://localhost",
        "https://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:3000.evil.example",
    ],
)
def test_refused_origins(origin):
    assert not origin_allowed(origin, CFG.allowed_origins, True)


def test_localhost_can_be_turned_off_and_the_list_replaced():
    assert not origin_allowed("http://localhost:3000", CFG.allowed_origins, False)
    assert origin_allowed("https://shop.example", ("https://shop.example",), False)
    assert not origin_allowed("https://gateframes.com", ("https://shop.example",), False)


# ==== client IP ================================================================================
def test_forwarded_for_is_ignored_without_trusted_proxies():
    assert client_ip("10.0.0.1", "1.2.3.4", 0) == "10.0.0.1"


def test_forwarded_for_uses_the_entry_the_trusted_proxy_added():
    assert client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4", 1) == "1.2.3.4"
    assert client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2) == "1.2.3.4"


def test_too_few_forwarded_entries_fall_back_to_the_peer():
    assert client_ip("10.0.0.1", "1.2.3.4", 2) == "10.0.0.1"
    assert client_ip(None, None, 1) == "unknown"


def test_first_subprotocol():
    assert first_subprotocol("realtime, openai-insecure-api-key.x") == "realtime"
    assert first_subprotocol(" audio ") == "audio"
    assert first_subprotocol("") is None
    assert first_subprotocol(None) is None


# ==== token ====================================================================================
def test_token_reasons():
    assert check_token(None, KEY, ("client",)).reason == "missing_token"
    assert check_token("!!!", KEY, ("client",)).reason == "token_malformed"
    assert check_token(mint(), os.urandom(32), ("client",)).reason == "token_decrypt_failed"
    expired = mint(ttl=1, now=NOW - 10_000)
    assert check_token(expired, KEY, ("client",), NOW).reason == "token_expired"
    assert check_token(mint("twilio"), KEY, ("client",), NOW).reason == "token_wrong_origin"
    assert check_token(mint(), b"", ("client",)).reason == "no_key"


def test_token_origin_picks_the_surface():
    claims = check_token(mint("twilio"), KEY, ("client", "twilio"), NOW)
    assert isinstance(claims, tokens.Claims) and claims.origin == "twilio"


# ==== order of the checks ======================================================================
def test_admitted_with_echoed_protocol():
    gate = FakeGate()
    got = run(gate, mint(), protocols="realtime, other")
    assert isinstance(got, Admitted)
    assert (got.surface, got.client_ip, got.subprotocol) == ("client", "203.0.113.7", "realtime")
    assert gate.hits == ["203.0.113.7"] and len(gate.nonces) == 1
    # remembered for the rest of the token's life
    assert list(gate.nonces.values()) == [300_000]


def test_bad_token_wins_over_bad_origin_but_counts_as_an_upgrade():
    gate = FakeGate()
    got = run(gate, "garbage", origin="https://evil.example")
    assert isinstance(got, Refusal) and got.status == 401
    assert gate.hits == ["203.0.113.7"] and gate.nonces == {}


def test_bad_origin_is_403_counts_and_does_not_burn_the_token():
    gate = FakeGate()
    token = mint()
    got = run(gate, token, origin="https://gateframes.com.evil.example")
    assert isinstance(got, Refusal) and (got.status, got.reason) == (403, "origin_not_allowed")
    assert gate.hits == ["203.0.113.7"] and gate.nonces == {}
    assert isinstance(run(gate, token), Admitted)


@pytest.mark.parametrize("token", [None, "garbage", "twilio"])
def test_over_the_rate_limit_even_a_bad_token_gets_429(token):
    gate = FakeGate(wait=7)
    got = run(gate, mint("twilio") if token == "twilio" else token)
    assert isinstance(got, Refusal) and (got.status, got.reason) == (429, "rate_limited")
    assert gate.nonces == {}


def test_a_bad_token_without_origin_counts_and_is_closed_the_twilio_way():
    gate = FakeGate()
    got = run_twilio(gate, "/token/garbage")
    assert isinstance(got, Refusal) and got.close_code == 1008
    assert gate.hits == ["198.51.100.9"]


def test_rate_limited_is_429_with_retry_after_and_keeps_the_token():
    gate = FakeGate(wait=42)
    got = run(gate, mint())
    assert isinstance(got, Refusal)
    assert (got.status, got.reason, got.retry_after) == (429, "rate_limited", 42)
    assert gate.nonces == {}


def test_replay_is_401():
    gate = FakeGate()
    token = mint()
    assert isinstance(run(gate, token), Admitted)
    got = run(gate, token)
    assert isinstance(got, Refusal) and (got.status, got.reason) == (401, "token_replayed")


def test_store_down_fails_closed_with_503():
    got = run(FakeGate(fail=True), mint())
    assert isinstance(got, Refusal) and got.status == 503 and got.retry_after


def test_query_token_and_twilio_surface_without_origin():
    gate = FakeGate()
    token = mint("twilio")
    got = admit(
        replace(TWILIO_CFG),
        gate,
        path="/",
        query_string=f"auth={token}",
        origin=None,
        ip="198.51.100.1",
        protocols="audio",
        surfaces=("client", "twilio"),
        now_ms=NOW,
        signature=sign(f"wss://relay.example.com/?auth={token}"),
    )
    assert isinstance(got, Admitted) and got.surface == "twilio" and got.subprotocol == "audio"
    assert gate.hits == []  # the per-IP browser limit does not apply to Twilio


# ==== the Twilio surface ======================================================================
TWILIO_CFG = Config(
    encryption_key=KEY,
    twilio_auth_token="twilio-auth-token",
    relay_public_url="wss://relay.example.com",
)
BOTH = ("client", "twilio")


SIGNED = "<sign the path as Twilio does>"


def run_twilio(gate: FakeGate, path: str, signature: str | None = SIGNED, cfg: Config = TWILIO_CFG):
    if signature == SIGNED:
        signature = sign("wss://relay.example.com" + path)
    return admit(
        cfg,
        gate,
        path=path,
        query_string="",
        origin=None,
        ip="198.51.100.9",
        protocols="audio",
        surfaces=BOTH,
        now_ms=NOW,
        signature=signature,
    )


def sign(url: str) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator("twilio-auth-token").compute_signature(url, {})


def test_twilio_bad_token_is_accepted_then_closed_1008():
    for path in ("/token/garbage", "/", f"/token/{tokens.mint(os.urandom(32), 'twilio', 60)}"):
        got = run_twilio(FakeGate(), path)
        assert isinstance(got, Refusal) and got.close_code == 1008, path


def test_browser_bad_token_is_still_a_401():
    got = run(FakeGate(), "garbage")
    assert isinstance(got, Refusal) and got.status == 401 and got.close_code is None


def test_twilio_replay_is_closed_1008():
    gate, token = FakeGate(), mint("twilio")
    assert isinstance(run_twilio(gate, f"/token/{token}"), Admitted)
    got = run_twilio(gate, f"/token/{token}")
    assert isinstance(got, Refusal) and (got.reason, got.close_code) == ("token_replayed", 1008)


def test_twilio_upgrade_without_signature_is_refused():
    """Twilio signs every Media Streams upgrade: one without the header is not Twilio."""
    gate = FakeGate()
    got = run_twilio(gate, f"/token/{mint('twilio')}", signature=None)
    assert isinstance(got, Refusal) and (got.reason, got.close_code) == ("missing_signature", 1008)
    assert gate.nonces == {}  # the token is not used up by the refused stream


def test_stream_signature_log_only_switch_admits_and_logs(caplog):
    log_only = replace(TWILIO_CFG, twilio_stream_signature="log")
    with caplog.at_level("WARNING", logger="relay.admission"):
        token = mint("twilio")
        got = run_twilio(FakeGate(), f"/token/{token}", signature=None, cfg=log_only)
    assert isinstance(got, Admitted)
    [line] = [
        r.getMessage() for r in caplog.records if "TWILIO_STREAM_SIGNATURE=log" in r.getMessage()
    ]
    assert "wss://relay.example.com/token/…" in line and token not in line


def test_a_ten_year_token_is_refused():
    forever = tokens.mint(KEY, "client", ttl_seconds=10 * 365 * 24 * 3600, now_ms=NOW)
    got = run(FakeGate(), forever)
    assert isinstance(got, Refusal) and (got.status, got.reason) == (401, "token_lifetime")
    shorter = replace(CFG, token_max_lifetime_seconds=60)
    five_minutes = tokens.mint(KEY, "client", ttl_seconds=300, now_ms=NOW)
    got = run(FakeGate(), five_minutes, cfg=shorter)
    assert isinstance(got, Refusal) and got.reason == "token_lifetime"


def test_twilio_signature_checked_when_present():
    token = mint("twilio")
    path = f"/token/{token}"
    good = sign("wss://relay.example.com" + path)
    assert isinstance(run_twilio(FakeGate(), path, signature=good), Admitted)
    gate = FakeGate()
    got = run_twilio(gate, f"/token/{mint('twilio')}", signature=good)  # signed another URL
    assert isinstance(got, Refusal) and (got.reason, got.close_code) == ("bad_signature", 1008)
    assert gate.nonces == {}  # a forged stream does not burn the token
    # Signature checks can be switched off for development only.
    off = replace(TWILIO_CFG, twilio_validate_signatures=False)
    assert isinstance(run_twilio(FakeGate(), path, signature="forged", cfg=off), Admitted)


def test_twilio_token_from_a_browser_page_is_refused():
    got = run(FakeGate(), mint("twilio"))
    assert isinstance(got, Refusal) and (got.status, got.reason) == (401, "token_wrong_origin")


def test_twilio_store_down_closes_1011():
    got = run_twilio(FakeGate(fail=True), f"/token/{mint('twilio')}")
    assert isinstance(got, Refusal) and got.close_code == 1011


# ==== live-session slots =======================================================================
def test_capacity_per_ip_and_per_process():
    cap = Capacity(per_ip=2, total=3)
    a, b = cap.reserve("client", "1.1.1.1"), cap.reserve("client", "1.1.1.1")
    third = cap.reserve("client", "1.1.1.1")
    assert isinstance(third, Refusal) and (third.status, third.reason) == (429, "sessions_per_ip")
    call = cap.reserve("twilio", "1.1.1.1")  # calls have no per-IP cap
    full = cap.reserve("client", "2.2.2.2")
    assert isinstance(full, Refusal) and (full.status, full.reason) == (503, "relay_full")
    assert not isinstance(call, Refusal) and not isinstance(a, Refusal)
    call.release()
    call.release()  # twice is harmless
    assert not isinstance(cap.reserve("client", "2.2.2.2"), Refusal)
    assert not isinstance(b, Refusal)
    b.release()
    assert not isinstance(cap.reserve("client", "1.1.1.1"), Refusal)
    assert cap.live == 3 and cap.by_ip == {"1.1.1.1": 2, "2.2.2.2": 1}


def test_a_full_ip_is_429_and_keeps_the_token():
    cap, gate, token = Capacity(per_ip=1, total=10), FakeGate(), mint()
    first = admit(CFG, gate, path=f"/token/{mint()}", query_string="", origin=GOOD,
                  ip="203.0.113.7", protocols=None, now_ms=NOW, slots=cap)  # fmt: skip
    assert isinstance(first, Admitted) and first.lease is not None
    got = run(gate, token, slots=cap)
    assert isinstance(got, Refusal) and (got.status, got.reason) == (429, "sessions_per_ip")
    first.lease.release()
    assert isinstance(run(gate, token, slots=cap), Admitted)  # the token was not used up


def test_a_replayed_token_gives_its_slot_back():
    cap, gate, token = Capacity(per_ip=5, total=5), FakeGate(), mint()
    assert isinstance(run(gate, token, slots=cap), Admitted)
    assert isinstance(run(gate, token, slots=cap), Refusal)
    assert cap.live == 1


def test_a_full_process_closes_a_twilio_stream_1013():
    cap = Capacity(per_ip=1, total=1)
    cap.reserve("client", "203.0.113.1")
    path = f"/token/{mint('twilio')}"
    got = admit(TWILIO_CFG, FakeGate(), path=path, query_string="",
                origin=None, ip="198.51.100.9", protocols="audio", surfaces=BOTH, now_ms=NOW,
                slots=cap, signature=sign("wss://relay.example.com" + path))  # fmt: skip
    assert isinstance(got, Refusal) and (got.reason, got.close_code) == ("relay_full", 1013)
