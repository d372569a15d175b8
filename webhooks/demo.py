"""``/demo``: the website's voice assistant in one page, for development only.

It shows operators (and the browser test) the whole browser path: ``POST /demo/token`` mints a
short-lived ``client`` token exactly as the website's app server does, the page opens
``RELAY_PUBLIC_URL/token/<token>``, streams the microphone as PCM16 at 24 kHz, plays the
assistant's audio, shows both transcripts and handles barge-in (stop playback, truncate at
what was heard, cancel). Outside ``APP_ENV=development`` both routes answer 404, so no
production deployment hands out tokens to anyone who asks.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify

from common.config import Config
from common.models import transcription_of
from common.names import BROWSER_ORIGIN
from common.tokens import mint

bp = Blueprint("demo", __name__)
PAGE = Path(__file__).with_name("static") / "demo.html"
TOKEN_TTL_SECONDS = 60


def _cfg() -> Config:
    cfg: Config = current_app.extensions["gateframes_config"]
    if not cfg.is_development:
        abort(404)
    return cfg


@bp.get("/demo")
def page() -> Response:
    _cfg()
    return Response(PAGE.read_text(encoding="utf-8"), mimetype="text/html")


@bp.post("/demo/token")
def token():
    cfg = _cfg()
    if not cfg.encryption_key or not cfg.relay_public_url:
        return jsonify(error="ENCRYPTION_KEY and RELAY_PUBLIC_URL must be set for the demo"), 503
    return jsonify(
        token=mint(cfg.encryption_key, BROWSER_ORIGIN, ttl_seconds=TOKEN_TTL_SECONDS),
        relay_url=cfg.relay_public_url,
        # The configured caller-side transcription, so the page asks for what calls get.
        transcription=transcription_of(cfg),
    )
