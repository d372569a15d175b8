"""Short-lived AES-GCM tokens shared with the GateFrames app server.

Format (the one the GateFrames app server mints with WebCrypto; it must not change):
``base64url-nopad(IV[16] || AES-GCM ciphertext || tag[16])`` with key
``base64decode(ENCRYPTION_KEY)`` and plaintext ``{"iat": ms, "exp": ms, "origin": "client" |
"twilio", "nonce": "<uuid>"}``. The 16-byte IV is what WebCrypto callers use; ``AESGCM``
accepts it. Valid when it decrypts, ``exp >= now``, ``iat <= now + 30 s`` and the origin fits.

Every malformed input raises :class:`TokenError` with a short reason, never anything else:
tokens arrive from the internet.

CLI: ``python -m common.tokens mint --origin client|twilio [--ttl-seconds N]`` and
``python -m common.tokens validate TOKEN --origin client|twilio``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.names import BROWSER_ORIGIN, TWILIO_ORIGIN

IV_BYTES = 16
TAG_BYTES = 16
#: Clock skew tolerated between the minting server and us.
MAX_FUTURE_IAT_MS = 30_000
DEFAULT_TTL_SECONDS = 300
#: Tokens meant to live longer (``exp - iat``) are refused whoever minted them: a leaked
#: long-lived token would open sessions for as long as it says (TOKEN_MAX_LIFETIME_SECONDS).
DEFAULT_MAX_LIFETIME_MS = 600_000
#: A real token is ~150 characters; anything far longer is rejected before decoding.
MAX_TOKEN_CHARS = 4096
ORIGINS = (BROWSER_ORIGIN, TWILIO_ORIGIN)

_NOT_B64URL = re.compile(r"[^A-Za-z0-9_-]")
_PATH_TOKEN = re.compile(r"^/(?:token|auth)/([^/?#&]*)")


class TokenError(Exception):
    """The token is not acceptable; ``reason`` says why in one word."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    iat: int
    exp: int
    origin: str
    nonce: str
    #: Stream tokens name the call they were minted for; a stream for another call is refused.
    call_sid: str | None = None

    def ttl_ms_remaining(self, now_ms: int | None = None) -> int:
        now = _now_ms() if now_ms is None else now_ms
        return max(0, self.exp - now)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(
    key: bytes,
    origin: str,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    *,
    now_ms: int | None = None,
    call_sid: str | None = None,
) -> str:
    """A fresh token for ``origin`` valid for ``ttl_seconds`` (bound to ``call_sid`` if given)."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}")
    now = _now_ms() if now_ms is None else now_ms
    claims = {
        "iat": now,
        "exp": now + int(ttl_seconds * 1000),
        "origin": origin,
        "nonce": str(uuid.uuid4()),
    }
    if call_sid:
        claims["call_sid"] = call_sid
    iv = os.urandom(IV_BYTES)
    sealed = AESGCM(key).encrypt(iv, json.dumps(claims, separators=(",", ":")).encode(), None)
    return _b64url_encode(iv + sealed)


def _int_field(data: dict, name: str) -> int:
    value = data.get(name)
    # bool is an int subclass; a float ms value from JavaScript is fine if integral.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("bad_payload")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise TokenError("bad_payload")
    if abs(value) > 2**53:
        raise TokenError("bad_payload")
    return int(value)


def validate(
    token: str,
    key: bytes,
    expected_origin: str,
    *,
    now_ms: int | None = None,
    max_lifetime_ms: int = DEFAULT_MAX_LIFETIME_MS,
) -> Claims:
    """Decrypt and check ``token``; raise :class:`TokenError` unless it is valid now."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed")
    if _NOT_B64URL.search(token) or len(token) % 4 == 1:
        raise TokenError("malformed")
    try:
        raw = _b64url_decode(token)
    except (binascii.Error, ValueError):
        raise TokenError("malformed") from None
    if len(raw) < IV_BYTES + TAG_BYTES + 2:
        raise TokenError("bad_length")
    try:
        plain = AESGCM(key).decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None)
    except (InvalidTag, ValueError):
        raise TokenError("decrypt_failed") from None
    try:
        data = json.loads(plain)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError("bad_payload") from None
    if not isinstance(data, dict):
        raise TokenError("bad_payload")
    iat, exp = _int_field(data, "iat"), _int_field(data, "exp")
    origin, nonce = data.get("origin"), data.get("nonce")
    if not isinstance(origin, str) or not isinstance(nonce, str) or not nonce:
        raise TokenError("bad_payload")
    now = _now_ms() if now_ms is None else now_ms
    if exp < now:
        raise TokenError("expired")
    if iat > now + MAX_FUTURE_IAT_MS:
        raise TokenError("not_yet_valid")
    if exp - iat > max_lifetime_ms:
        raise TokenError("lifetime")
    if origin != expected_origin:
        raise TokenError("wrong_origin")
    call_sid = data.get("call_sid")
    if call_sid is not None and not isinstance(call_sid, str):
        raise TokenError("bad_payload")
    return Claims(iat=iat, exp=exp, origin=origin, nonce=nonce[:200], call_sid=(call_sid or None))


def token_from_request(path: str, query_string: str) -> str | None:
    """The token from ``/token/<t>``, ``/auth/<t>`` or ``?auth=<t>``, or None.

    Anything after ``?``, ``&`` or ``#`` and every character outside the base64url alphabet
    is stripped first (clients in the field append junk to the path)."""
    match = _PATH_TOKEN.match(path or "")
    candidate: str | None = match.group(1) if match else None
    if not candidate:
        for part in (query_string or "").lstrip("?").split("&"):
            name, _, value = part.partition("=")
            if name == "auth" and value:
                candidate = value
                break
    if not candidate:
        return None
    candidate = re.split(r"[?&#]", candidate, maxsplit=1)[0]
    cleaned = _NOT_B64URL.sub("", candidate)
    return cleaned or None


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from common.config import ConfigError, get_config

    parser = argparse.ArgumentParser(prog="python -m common.tokens")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mint", help="print a new token")
    m.add_argument("--origin", choices=ORIGINS, required=True)
    m.add_argument("--ttl-seconds", type=int, default=DEFAULT_TTL_SECONDS)
    v = sub.add_parser("validate", help="print a token's claims, or why it is refused")
    # A base64url token may begin with "-", which argparse would take for an option: such a
    # token is left over by parse_known_args and taken as the token here.
    v.add_argument("token", nargs="?")
    v.add_argument("--origin", choices=ORIGINS, required=True)
    args, extra = parser.parse_known_args(argv)
    if args.command == "validate" and args.token is None and len(extra) == 1:
        args.token, extra = extra[0], []
    if extra or (args.command == "validate" and args.token is None):
        parser.error("validate takes one TOKEN" if not extra else f"unrecognized: {extra}")
    try:
        cfg = get_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    key, max_lifetime = cfg.encryption_key, cfg.token_max_lifetime_seconds
    if not key:
        print("configuration error: ENCRYPTION_KEY is not set", file=sys.stderr)
        return 2
    if args.command == "mint":
        if not 0 < args.ttl_seconds <= max_lifetime:
            print(
                f"--ttl-seconds must be between 1 and {max_lifetime} "
                "(TOKEN_MAX_LIFETIME_SECONDS; longer tokens are refused)",
                file=sys.stderr,
            )
            return 2
        print(mint(key, args.origin, args.ttl_seconds))
        return 0
    try:
        claims = validate(args.token, key, args.origin, max_lifetime_ms=max_lifetime * 1000)
    except TokenError as exc:
        print(f"invalid: {exc.reason}", file=sys.stderr)
        return 1
    print(json.dumps(claims.__dict__))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
