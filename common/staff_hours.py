"""``STAFF_HOURS``: when a person can take a transferred call.

Format: ``<days> HH:MM-HH:MM <IANA zone>``, e.g. ``Mon-Fri 08:00-17:00 America/Los_Angeles``.
Days are ``Mon`` … ``Sun``, a range (``Mon-Fri``, ``Fri-Mon`` wraps) or a comma list
(``Mon,Wed,Sat``). The window is in the named zone's local time, so daylight saving is
followed. A window may not cross midnight (write two days' hours instead); start < end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class StaffHoursError(ValueError):
    """The text is not ``<days> HH:MM-HH:MM <zone>``; the message says which part."""


@dataclass(frozen=True)
class StaffHours:
    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    zone: str

    def is_open(self, when: dt.datetime | None = None) -> bool:
        """Whether ``when`` (default: now; must be timezone-aware) falls inside the hours."""
        now = (when or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(self.zone))
        return now.weekday() in self.days and self.start <= now.time() < self.end

    def describe(self) -> str:
        names = ", ".join(DAYS[d] for d in sorted(self.days))
        return f"{names} {self.start:%H:%M}-{self.end:%H:%M} ({self.zone})"


def _day(name: str) -> int:
    try:
        return DAYS.index(name.strip().capitalize())
    except ValueError:
        raise StaffHoursError(f"unknown day {name!r} (use Mon … Sun)") from None


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            d = first
            while True:
                out.add(d)
                if d == last:
                    break
                d = (d + 1) % 7
        else:
            out.add(_day(part))
    return frozenset(out)


def _clock(text: str) -> dt.time:
    try:
        hours, minutes = text.split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise StaffHoursError(f"bad time {text!r} (use HH:MM, 24-hour)") from None


def parse(text: str) -> StaffHours:
    parts = text.split()
    if len(parts) != 3:
        raise StaffHoursError("expected '<days> HH:MM-HH:MM <IANA zone>'")
    days_text, window, zone = parts
    if window.count("-") != 1:
        raise StaffHoursError(f"bad window {window!r} (use HH:MM-HH:MM)")
    start, end = (_clock(p) for p in window.split("-"))
    if not start < end:
        raise StaffHoursError("the window must start before it ends (no crossing midnight)")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise StaffHoursError(f"unknown time zone {zone!r}") from None
    return StaffHours(_days(days_text), start, end, zone)
