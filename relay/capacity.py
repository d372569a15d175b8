"""Live-session caps: per client IP (browser sessions) and per relay process (all sessions).

Counted in memory, not Redis: a session lives in exactly one relay process, so that process
knows its live sessions exactly, and a crashed process takes its counts with it (nothing to
expire or repair). The per-IP cap is therefore per process; with several relay processes
behind a router a client could hold up to N times ``BROWSER_SESSIONS_PER_IP``, which still
bounds it (the upgrade *rate* limit is the cross-process one, in Redis).

Greenlets switch only on I/O, and nothing here does I/O, so no lock is needed.
"""

from __future__ import annotations

from relay.admission import BROWSER, Refusal


class Lease:
    """One reserved slot; :meth:`release` gives it back (idempotent)."""

    __slots__ = ("_capacity", "ip", "surface")

    def __init__(self, capacity: Capacity, surface: str, ip: str):
        self._capacity: Capacity | None = capacity
        self.surface = surface
        self.ip = ip

    def release(self) -> None:
        capacity, self._capacity = self._capacity, None
        if capacity is not None:
            capacity._release(self)


class Capacity:
    def __init__(self, per_ip: int, total: int):
        self.per_ip = per_ip
        self.total = total
        self.live = 0
        self.by_ip: dict[str, int] = {}

    def reserve(self, surface: str, ip: str) -> Lease | Refusal:
        """A slot for a new session, or the refusal: 503 when the process is full, 429 when
        this IP already has ``per_ip`` live browser sessions (Twilio calls have no IP cap:
        they all come from Twilio's few addresses)."""
        if self.live >= self.total:
            return Refusal(503, "relay_full", "this relay is at its session limit; retry later", 5)
        browser = surface == BROWSER
        if browser and self.by_ip.get(ip, 0) >= self.per_ip:
            return Refusal(
                429, "sessions_per_ip", "too many open sessions from this address; close one", 5
            )
        self.live += 1
        if browser:
            self.by_ip[ip] = self.by_ip.get(ip, 0) + 1
        return Lease(self, surface, ip)

    def _release(self, lease: Lease) -> None:
        self.live -= 1
        if lease.surface == BROWSER:
            left = self.by_ip[lease.ip] - 1
            if left:
                self.by_ip[lease.ip] = left
            else:
                del self.by_ip[lease.ip]
