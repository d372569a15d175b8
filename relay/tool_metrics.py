"""The assistant's tool calls on the relay's ``/metrics`` (the default registry).

Both labels are bounded: ``tool`` is one of :data:`relay.call.tools.TOOL_NAMES` or
``unknown``, ``outcome`` one of :data:`relay.call.tools.OUTCOMES`.
"""

from __future__ import annotations

from prometheus_client import Counter

TOOL_CALLS = Counter(
    "relay_tool_calls_total",
    "Function calls the voice assistant made, by tool and outcome",
    ["tool", "outcome"],
)
