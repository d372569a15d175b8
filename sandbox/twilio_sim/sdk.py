"""Point the official twilio SDK at the simulator: the production client's rebasing HTTP
client (:class:`common.twilio_client.RebasedHttpClient`), re-exported for the simulator's users
so tests and operators drive the simulator through exactly what the gateway uses."""

from __future__ import annotations

from common.twilio_client import RebasedHttpClient

__all__ = ["RebasedHttpClient"]
