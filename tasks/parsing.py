"""Reading what people text: the @ai mention and the @call / @group commands.

Pure functions, so the rules are unit- and property-tested without Twilio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.phone_numbers import normalize_us_number

#: ``@ai`` as a word: not inside an address (``mail@ai.com``) or a longer handle (``@aid``).
#: A trailing ``:`` is part of the mention; a sentence-ending ``.`` is allowed.
_MENTION = re.compile(r"(?<![\w.@+-])@ai(?:\s*:|(?=$|[\s,!?;)\]}\"']|\.(?:\s|$)))", re.IGNORECASE)
_COMMAND = re.compile(r"(?<![\w.@+-])@(call|group)\b:?", re.IGNORECASE)

#: A US number as people write it: 4155550000, (415) 555-0000, 415.555.0000, +1 415 555 0000.
_PHONE = re.compile(
    r"(?<![\d+])(?:\+?1[\s.\-]*)?(?:\(\s*\d{3}\s*\)|\d{3})[\s.\-]*\d{3}[\s.\-]*\d{4}(?!\d)"
)
_DIGITISH = re.compile(r"\+?[\d()][\d()\s.\-]*\d")


def mentions_ai(text: str) -> bool:
    return bool(_MENTION.search(text or ""))


def strip_mention(text: str) -> str:
    """The text without ``@ai`` mentions, whitespace tidied."""
    stripped = _MENTION.sub(" ", text or "")
    stripped = re.sub(r"\s+([.,!?;:])", r"\1", stripped)
    return re.sub(r"\s{2,}", " ", stripped).strip(" \t\r\n,:")


@dataclass
class Command:
    """``@call`` or ``@group`` with the numbers it names."""

    name: str
    numbers: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def parse_command(text: str) -> Command | None:
    """The first ``@call``/``@group`` command in ``text`` with its numbers (deduplicated,
    in order) and the fragments that looked like numbers but are not valid US numbers."""
    match = _COMMAND.search(text or "")
    if not match:
        return None
    rest = text[match.end() :]
    nxt = _COMMAND.search(rest)
    if nxt:
        rest = rest[: nxt.start()]
    command = Command(name=match.group(1).lower())
    consumed: list[tuple[int, int]] = []
    for phone in _PHONE.finditer(rest):
        consumed.append(phone.span())
        number = normalize_us_number(phone.group())
        if number is None:
            command.invalid.append(phone.group().strip())
        elif number not in command.numbers:
            command.numbers.append(number)
    leftover = list(rest)
    for start, end in consumed:
        leftover[start:end] = [" "] * (end - start)
    for frag in _DIGITISH.finditer("".join(leftover)):
        piece = frag.group().strip(" .-")
        if sum(c.isdigit() for c in piece) >= 3:
            command.invalid.append(piece)
    return command
