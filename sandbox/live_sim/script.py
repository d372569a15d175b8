"""What the simulated caller says and which tools the simulated backend calls, set by tests.

Shared by every session of a simulator, like the Realtime simulator's script
(:mod:`sandbox.realtime_sim.tools`), and consumed one caller turn at a time:

- ``caller_says``: the transcript of the next caller turn (the words the phone's tone "said");
  without one the turn is transcribed ``(caller spoke 1.2 s)``.
- ``tool_calls``: batches of function calls; the next caller turn of a session with ``responses``
  delegation delegates and the backend makes the next batch's calls (one call unless
  ``parallel_tool_calls`` is not false). With no batch queued, words in the transcript pick a tool
  as in the Realtime simulator (``a person`` → ``transfer_to_staff``, ``goodbye`` → ``end_call``,
  ``text me`` → ``send_text``; see :data:`sandbox.realtime_sim.tools.PHRASES`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from sandbox.realtime_sim.tools import arguments_for, summary_of, tool_for

__all__ = ["Call", "Script", "arguments_for", "summary_of", "tool_for"]

Call = tuple[str, dict[str, Any] | None]  # (tool name, arguments; None: filled from the schema)


@dataclass
class Script:
    caller_says: collections.deque[str] = field(default_factory=collections.deque)
    tool_calls: collections.deque[list[Call]] = field(default_factory=collections.deque)

    def reset(self) -> None:
        self.caller_says.clear()
        self.tool_calls.clear()

    def view(self) -> dict[str, Any]:
        return {
            "caller_says": list(self.caller_says),
            "tool_calls": [
                [{"name": n, "arguments": a} for n, a in batch] for batch in self.tool_calls
            ],
        }
