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
SUMMARIES = Counter(
    "relay_call_summaries_total",
    "After-call summaries handed to the workers (queued), not (lost), or not wanted "
    "(no_destination: STAFF_NOTIFY_TO, STAFF_CONVERSATION_SID and VOICEMAIL_NOTIFY_TO unset)",
    ["outcome"],
)
CALL_RECORDS = Counter(
    "relay_call_records_total",
    "Call records handed to the workers for the call log (queued) or not (lost)",
    ["outcome"],
)
RECONNECTS = Counter(
    "relay_upstream_reconnects_total",
    "OpenAI Realtime sockets lost mid-call: reconnected, or given up (the caller got the apology)",
    ["outcome"],
)
HANDOVERS = Counter(
    "relay_handovers_total",
    "Calls moved between relays on SIGTERM: handed_over / failed on the stopping relay, "
    "resumed / state_missing on the one taking the call",
    ["outcome"],
)
SILENT_GAP = Histogram(
    "relay_silent_gap_seconds",
    "How long a caller had no assistant during a reconnect or a relay handover",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
)

#: The assistant's tool calls. Both labels are bounded: ``tool`` is one of
#: :data:`relay.call.tool_specs.TOOL_NAMES` or ``unknown``, ``outcome`` one of
#: :data:`relay.call.tools.OUTCOMES`.
TOOL_CALLS = Counter(
    "relay_tool_calls_total",
    "Function calls the voice assistant made, by tool and outcome",
    ["tool", "outcome"],
)
