"""Prometheus metrics for the relay (served at ``GET /metrics``).

Nothing here is touched per frame: sessions count their frames in plain ints and add them
once, when they end, so the hot path pays nothing for observability.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REFUSALS = Counter(
    "relay_upgrades_refused_total", "WebSocket upgrades refused before the handshake", ["reason"]
)
SESSIONS = Counter("relay_sessions_total", "Relay sessions ended", ["surface", "reason"])
ACTIVE = Gauge("relay_sessions_active", "Relay sessions open now", ["surface"])
FRAMES = Counter("relay_frames_total", "Messages relayed", ["surface", "direction"])
DURATION = Histogram(
    "relay_session_seconds",
    "Relay session length",
    ["surface"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
)
BARGE_INS = Counter("relay_barge_ins_total", "Callers interrupting the assistant (Twilio calls)")
VOICEMAIL_NOTICES = Counter(
    "relay_voicemail_notices_total",
    "Voicemail notices handed to the workers (queued) or not (lost)",
    ["outcome"],
)
POLICY_REFUSALS = Counter(
    "relay_browser_events_policed_total",
    "Browser events that lost a field or were refused (BROWSER_SESSION_POLICY=owned)",
)
HEADER_TIMEOUTS = Counter(
    "relay_header_timeouts_total",
    "Connections closed because the request headers were not complete in time",
)
