"""Who may open a relay WebSocket: token, Origin, per-IP upgrade rate, capacity, single use.

Every check runs *before* the upgrade, so a refusal is a plain HTTP status with a short reason
(the browser sees it in the failed handshake, the log gets one line). The order is fixed:

1. the token is read - a valid ``twilio`` token goes the Twilio way (below);
2. every other attempt counts against ``UPGRADE_RATE_LIMIT`` for the client IP, across every
   relay process (429 + Retry-After) - refused ones too, so bad tokens or a wrong Origin
   cannot be tried faster than good upgrades;
3. token (401) - origin ``client`` is the browser relay;
4. ``Origin`` on the allowlist (403);
5. a live-session slot in this process (:mod:`relay.capacity`: 429 per IP, 503 when full);
6. the token's nonce is claimed in Redis until the token expires, so it opens one session (401).

The nonce is claimed last so that a refused attempt (rate limit, wrong origin, no slot) does
not burn a good token. Twilio streams skip the rate limit and Origin (every call comes from
Twilio's few addresses, without an Origin) but not the process cap. Pure checks are plain
functions; :class:`RedisGate` is the thin part that needs Redis, and nothing here touches a
frame.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from twilio.request_validator import RequestValidator

from common import tokens
from common.config import Config
from common.names import BROWSER_ORIGIN, TWILIO_ORIGIN
from common.redis_util import claim
from common.redis_util import key as redis_key

log = logging.getLogger(__name__)

#: Surfaces by token origin: the website's browser relay and Twilio Media Streams.
BROWSER = BROWSER_ORIGIN
TWILIO = TWILIO_ORIGIN
#: Close code for a Twilio stream we refuse after accepting it (policy violation).
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
LOCALHOST_PREFIX = "http://localhost:"


@dataclass(frozen=True)
class Refusal:
    """An upgrade we turn down: HTTP ``status``, a one-word ``reason`` for logs and metrics,
    and a sentence for the response body."""

    status: int
    reason: str
    detail: str
    retry_after: int | None = None
    #: Set for Twilio streams: accept the upgrade, then close with this WebSocket code.
    #: Twilio only runs the TwiML after ``</Connect>`` (our apology) once the socket closes;
    #: a refused handshake leaves the caller in an error path we do not control.
    close_code: int | None = None


class Lease(Protocol):
    def release(self) -> None:
        """Give the session slot back (idempotent)."""


class Slots(Protocol):
    """Live-session slots (:class:`relay.capacity.Capacity`)."""

    def reserve(self, surface: str, ip: str) -> Lease | Refusal:
        """A slot for a new session on ``surface`` from ``ip``, or why not."""


@dataclass(frozen=True)
class Admitted:
    surface: str
    claims: tokens.Claims
    client_ip: str
    #: The first subprotocol the client offered, echoed in the 101 response.
    subprotocol: str | None
    #: The session's slot; whoever runs the session releases it.
    lease: Lease | None = field(default=None, compare=False)


# -- pure checks ------------------------------------------------------------------------------
def origin_allowed(origin: str | None, allowed: tuple[str, ...], allow_localhost: bool) -> bool:
    """Exact match against the allowlist, or ``http://localhost:<1024-65535>`` when enabled.

    Exact means exact: ``https://gateframes.com.evil.example`` or a trailing slash is refused.
    """
    if not origin:
        return False
    if origin in allowed:
        return True
    if allow_localhost and origin.startswith(LOCALHOST_PREFIX):
        port = origin[len(LOCALHOST_PREFIX) :]
        return port.isascii() and port.isdigit() and port[0] != "0" and 1024 <= int(port) <= 65535
    return False


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The caller's IP: ``REMOTE_ADDR``, or with N trusted proxies in front, the N-th
    ``X-Forwarded-For`` entry from the right (what the outermost trusted proxy saw).

    Entries further left are client-controlled and never used; with too few entries we keep
    ``REMOTE_ADDR`` (the same rule as werkzeug's ProxyFix, which the web process uses).
    """
    fallback = remote_addr or "unknown"
    if trusted_proxies <= 0 or not forwarded_for:
        return fallback
    hops = [h.strip() for h in forwarded_for.split(",")]
    if len(hops) < trusted_proxies:
        return fallback
    return hops[-trusted_proxies] or fallback


def first_subprotocol(header: str | None) -> str | None:
    """The first protocol in ``Sec-WebSocket-Protocol``: echoed back, since browsers fail an
    upgrade that asked for one and got none."""
    if not header:
        return None
    first = header.split(",", 1)[0].strip()
    return first or None


def check_token(
    token: str | None,
    key: bytes,
    surfaces: tuple[str, ...],
    now_ms: int | None = None,
    max_lifetime_ms: int = tokens.DEFAULT_MAX_LIFETIME_MS,
) -> tokens.Claims | Refusal:
    """The token's claims if it is valid for one of ``surfaces``, else a 401 refusal."""
    if not token:
        return Refusal(401, "missing_token", "a token is required")
    if not key:
        return Refusal(401, "no_key", "tokens cannot be checked (no ENCRYPTION_KEY)")
    error = tokens.TokenError("wrong_origin")
    for surface in surfaces:
        try:
            return tokens.validate(
                token, key, surface, now_ms=now_ms, max_lifetime_ms=max_lifetime_ms
            )
        except tokens.TokenError as exc:
            error = exc
            if exc.reason != "wrong_origin":
                break
    return Refusal(401, f"token_{error.reason}", "invalid token")


def stream_signature_ok(cfg: Config, url_path: str, signature: str) -> bool:
    """``X-Twilio-Signature`` of a Media Streams upgrade. Twilio signs the ``wss://`` URL
    exactly as the TwiML wrote it (``RELAY_PUBLIC_URL`` + path, never the Host a router passes
    on) with no parameters, and sends the header on every Media Streams upgrade."""
    if not cfg.twilio_auth_token or not cfg.relay_public_url:
        return False
    url = cfg.relay_public_url.rstrip("/") + url_path
    return RequestValidator(cfg.twilio_auth_token).validate(url, {}, signature)


def signed_url_for_log(cfg: Config, url_path: str) -> str:
    """The URL a signature was checked over, with the token cut out (tokens are never logged)."""
    path = re.sub(r"^/(token|auth)/[^/?#]*", r"/\1/…", url_path)
    return (cfg.relay_public_url or "<RELAY_PUBLIC_URL unset>").rstrip("/") + path


def _stream_signature(cfg: Config, url_path: str, signature: str | None) -> Refusal | None:
    """The refusal for a Media Streams upgrade whose signature is missing or wrong, or None.
    With TWILIO_STREAM_SIGNATURE=log a bad signature is only logged (an operator's switch,
    should a live call show Twilio not signing)."""
    if not cfg.twilio_validate_signatures:
        return None
    if signature is None:
        refusal = Refusal(403, "missing_signature", "X-Twilio-Signature is required")
    elif not stream_signature_ok(cfg, url_path, signature):
        refusal = Refusal(403, "bad_signature", "X-Twilio-Signature does not match")
    else:
        return None
    checked = signed_url_for_log(cfg, url_path)
    if cfg.twilio_stream_signature == "log":
        log.warning(
            "Media Streams upgrade %s (checked over %s); admitted: TWILIO_STREAM_SIGNATURE=log",
            refusal.reason,
            checked,
            extra={"reason": refusal.reason},
        )
        return None
    log.warning(
        "Media Streams upgrade %s; the signature was checked over %s",
        refusal.reason,
        checked,
        extra={"reason": refusal.reason},
    )
    return for_twilio(refusal)


def for_twilio(refusal: Refusal, code: int = CLOSE_POLICY) -> Refusal:
    """The same refusal, delivered as a WebSocket close so Twilio runs the after-TwiML."""
    return replace(refusal, close_code=code)


def rate_limit_item(spec: str) -> RateLimitItem:
    """``"10 per minute"`` (flask-limiter notation, as the web process uses)."""
    return parse(spec)


# -- the Redis part ---------------------------------------------------------------------------
class Gate(Protocol):
    """The shared state admission needs; a fake in unit tests, :class:`RedisGate` in the relay."""

    def hit_upgrade(self, ip: str) -> int | None:
        """Count an upgrade for ``ip``; None if allowed, else seconds until one is allowed."""

    def claim_nonce(self, nonce: str, ttl_ms: int) -> bool:
        """True the first time ``nonce`` is seen (remembered ``ttl_ms``), False on a replay."""

    def ping(self) -> None:
        """Raise ``redis.RedisError`` if the store is unreachable (for /healthz)."""


class RedisGate:
    """Moving-window upgrade limits (the ``limits`` package, as flask-limiter uses) and
    ``SET NX PX`` nonces, in the Redis every relay process shares."""

    def __init__(self, cfg: Config):
        self.item = rate_limit_item(cfg.upgrade_rate_limit)
        options = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}
        self.limiter = MovingWindowRateLimiter(RedisStorage(cfg.redis_url, **options))
        self.redis = redis.Redis.from_url(cfg.redis_url, **options)

    def hit_upgrade(self, ip: str) -> int | None:
        if self.limiter.hit(self.item, "relay-upgrade", ip):
            return None
        stats = self.limiter.get_window_stats(self.item, "relay-upgrade", ip)
        return max(1, int(stats.reset_time - time.time()) + 1)

    def claim_nonce(self, nonce: str, ttl_ms: int) -> bool:
        return claim(self.redis, redis_key("nonce", nonce), b"1", px=max(1, ttl_ms))

    def ping(self) -> None:
        self.redis.ping()


def admit(
    cfg: Config,
    gate: Gate,
    *,
    path: str,
    query_string: str,
    origin: str | None,
    ip: str,
    protocols: str | None,
    surfaces: tuple[str, ...] = (BROWSER,),
    now_ms: int | None = None,
    signature: str | None = None,
    slots: Slots | None = None,
) -> Admitted | Refusal:
    """Run the checks in order; the first failure is the answer.

    ``ip`` comes from :func:`client_ip`; ``surfaces`` are the token origins served; ``slots``
    (when given) caps live sessions. Media Streams upgrades carry no ``Origin`` (browsers
    always send one), so a refused upgrade without an Origin is answered the Twilio way:
    accepted, then closed 1008."""
    claims = check_token(
        tokens.token_from_request(path, query_string),
        cfg.encryption_key,
        surfaces,
        now_ms,
        cfg.token_max_lifetime_seconds * 1000,
    )
    if isinstance(claims, tokens.Claims) and claims.origin == TWILIO:
        if origin is not None:  # a browser page: Twilio never sends Origin
            claims = Refusal(401, "token_wrong_origin", "invalid token")
        else:
            url_path = path + (f"?{query_string}" if query_string else "")
            return _admit_twilio(
                cfg, gate, claims, url_path, ip, protocols, signature, now_ms, slots
            )
    # A bad token without an Origin may be Twilio's (a stale stream URL): refuse it the
    # Twilio way. A good browser token without an Origin is a plain HTTP refusal (403).
    twilio_way = origin is None and TWILIO in surfaces and isinstance(claims, Refusal)
    lease = _browser(cfg, gate, claims, origin, ip, now_ms, slots)
    if isinstance(lease, Refusal):
        return for_twilio(lease) if twilio_way else lease
    assert isinstance(claims, tokens.Claims)  # _browser refuses every other case
    return Admitted(BROWSER, claims, ip, first_subprotocol(protocols), lease)


def _browser(
    cfg: Config,
    gate: Gate,
    claims: tokens.Claims | Refusal,
    origin: str | None,
    ip: str,
    now_ms: int | None,
    slots: Slots | None,
) -> Lease | Refusal | None:
    """Steps 2-6 for everything but a Twilio stream: the slot (if any), or the refusal."""
    try:
        # Counted before the token and Origin are judged: refused attempts use up the
        # allowance as good ones do.
        if (wait := gate.hit_upgrade(ip)) is not None:
            return Refusal(429, "rate_limited", "too many connections; retry later", wait)
    except redis.RedisError as exc:
        # Fail closed: without Redis we can neither limit nor stop replays.
        log.error("admission store unavailable: %s", type(exc).__name__)
        return Refusal(503, "store_unavailable", "temporarily unavailable; retry later", 5)
    if isinstance(claims, Refusal):
        return claims
    if not origin_allowed(origin, cfg.allowed_origins, cfg.allow_localhost_origins):
        return Refusal(403, "origin_not_allowed", "this Origin may not open the relay")
    lease = slots.reserve(BROWSER, ip) if slots is not None else None
    if isinstance(lease, Refusal):
        return lease
    refusal = _claim(gate, claims, now_ms)
    if refusal is not None:
        if lease is not None:
            lease.release()
        return refusal
    return lease


def _claim(gate: Gate, claims: tokens.Claims, now_ms: int | None) -> Refusal | None:
    """Step 6: the token's single use."""
    try:
        if not gate.claim_nonce(claims.nonce, claims.ttl_ms_remaining(now_ms)):
            return Refusal(401, "token_replayed", "this token was already used")
    except redis.RedisError as exc:
        log.error("admission store unavailable: %s", type(exc).__name__)
        return Refusal(503, "store_unavailable", "temporarily unavailable; retry later", 5)
    return None


def _admit_twilio(
    cfg: Config,
    gate: Gate,
    claims: tokens.Claims,
    url_path: str,
    ip: str,
    protocols: str | None,
    signature: str | None,
    now_ms: int | None,
    slots: Slots | None,
) -> Admitted | Refusal:
    """Twilio: no Origin or per-IP limit (all calls come from Twilio's few addresses); the
    upgrade must be signed by Twilio; the process cap applies; the token still opens one
    stream only (and, bound to its call, only that call's stream: checked at ``start``)."""
    if (refusal := _stream_signature(cfg, url_path, signature)) is not None:
        return refusal
    lease = slots.reserve(TWILIO, ip) if slots is not None else None
    if isinstance(lease, Refusal):
        return for_twilio(lease, CLOSE_TRY_AGAIN)
    refusal = _claim(gate, claims, now_ms)
    if refusal is not None:
        if lease is not None:
            lease.release()
        code = CLOSE_INTERNAL if refusal.reason == "store_unavailable" else CLOSE_POLICY
        return for_twilio(refusal, code)
    return Admitted(claims.origin, claims, ip, first_subprotocol(protocols), lease)
