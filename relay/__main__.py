"""``python -m relay --host H --port P``: the gevent WebSocket relay.

Monkey-patching comes first so Redis (admission) and every socket cooperate with gevent. On
SIGTERM (a deploy) the relay drains: it refuses new sessions (``/healthz`` answers 503
``draining``), hands every live call to another relay process (:mod:`relay.call.handover`), closes
browser sessions with 1012 so the page reconnects, waits up to ``RELAY_DRAIN_SECONDS`` for
them all to go, and exits.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from common.config import ConfigError, get_config  # noqa: E402
from common.end_reasons import EndReason  # noqa: E402
from common.logs import configure_logging  # noqa: E402
from common.models import warn_at_start  # noqa: E402
from relay.server import build_server  # noqa: E402

log = logging.getLogger("relay")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relay", description=__doc__)
    # Loopback by default (a developer's machine); the Procfile and bin/web pass 0.0.0.0.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    try:
        cfg = get_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg, "relay")
    warn_at_start(cfg, log)
    if not cfg.encryption_key:
        log.warning("ENCRYPTION_KEY is not set: no token can be checked, every session is refused")
    if not cfg.openai_api_key:
        log.warning("OPENAI_API_KEY is not set: calls and browser sessions cannot reach OpenAI")
    if not cfg.twilio_auth_token and cfg.twilio_validate_signatures:
        log.warning("TWILIO_AUTH_TOKEN is not set: every Media Streams upgrade will be refused")
    if cfg.browser_session_policy == "passthrough":
        log.warning(
            "BROWSER_SESSION_POLICY=passthrough: browsers may set any session field "
            "(instructions, tools) on this relay's OpenAI key; use owned in production"
        )

    server = build_server(cfg, args.host, args.port)
    app = server.application

    def drain() -> None:
        if not server.started or app.draining:
            return
        log.info(
            "draining: handing over %d calls, closing %d browser sessions",
            len(app.calls),
            len(app.sessions),
        )
        # The listener stays open so /healthz can say "draining" (503); new sessions are
        # refused from here on.
        app.shutdown_sessions()
        with gevent.Timeout(cfg.relay_drain_seconds, False):
            while app.sessions or app.calls:
                gevent.sleep(0.05)
        if app.calls or app.sessions:
            log.warning(
                "drain time up: %d calls and %d browser sessions still open",
                len(app.calls),
                len(app.sessions),
            )
        for call in list(app.calls):
            call.stop(EndReason.SERVER_SHUTDOWN)
        log.info("drained; stopping")
        server.stop(timeout=1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, lambda: gevent.spawn(drain))
    log.info("relay listening on %s:%d", args.host, args.port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
