"""Twilio's v1 list paging: ``PageSize``/``Page``/``PageToken`` and the ``meta`` block.

The SDK follows ``meta.next_page_url`` verbatim, so those URLs are absolute and point at the
simulator. Page tokens are keyset cursors (``PA<key>`` = after, ``PB<key>`` = before), not
offsets, so a page walk stays correct while messages are being appended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import request

from sandbox.twilio_sim.errors import TwilioError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise TwilioError(400, 20001, f"Invalid {name}: {raw}") from exc


def _token(raw: str) -> tuple[str, int]:
    if len(raw) > 2 and raw[:2] in ("PA", "PB") and raw[2:].lstrip("-").isdigit():
        return raw[:2], int(raw[2:])
    raise TwilioError(400, 20001, f"Invalid PageToken: {raw}")


def page(
    items: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], int],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    list_key: str,
    base_url: str,
    filters: dict[str, str] | None = None,
    ordered: bool = False,
) -> dict[str, Any]:
    """One page of ``items`` as Twilio's list JSON ``{list_key: [...], "meta": {...}}``."""
    order = request.args.get("Order", "asc") if ordered else "asc"
    if order not in ("asc", "desc"):
        raise TwilioError(400, 20001, f"Invalid Order: {order}")
    size = _int_arg("PageSize", DEFAULT_PAGE_SIZE)
    if not 1 <= size <= MAX_PAGE_SIZE:
        # Twilio refuses the request rather than clamping (the SDK sends ``limit`` as
        # ``PageSize`` when no page size is given, so a large limit reaches the API as is).
        raise TwilioError(
            400, 20001, f"Invalid PageSize: {size}. Must be between 1 and {MAX_PAGE_SIZE}"
        )
    number = max(_int_arg("Page", 0), 0)
    desc = order == "desc"
    ordered_items = sorted(items, key=key, reverse=desc)

    def past(item: dict[str, Any], mark: int) -> bool:  # after ``mark`` in walking order
        return key(item) < mark if desc else key(item) > mark

    raw_token = request.args.get("PageToken")
    if raw_token:
        kind, mark = _token(raw_token)
        if kind == "PA":
            rest = [i for i in ordered_items if past(i, mark)]
            chunk, more = rest[:size], len(rest) > size
        else:
            before = [i for i in ordered_items if key(i) != mark and not past(i, mark)]
            chunk, more = before[-size:], True
    else:
        chunk, more = ordered_items[:size], len(ordered_items) > size

    query: dict[str, str] = dict(filters or {})
    if ordered:
        query["Order"] = order

    def url(page_number: int, token: str | None = None) -> str:
        q = {**query, "PageSize": str(size), "Page": str(page_number)}
        if token:
            q["PageToken"] = token
        return f"{base_url}?{urlencode(q)}"

    meta = {
        "page": number,
        "page_size": size,
        "first_page_url": url(0),
        "previous_page_url": (
            url(number - 1, f"PB{key(chunk[0])}") if number > 0 and chunk else None
        ),
        "url": url(number, raw_token),
        "next_page_url": url(number + 1, f"PA{key(chunk[-1])}") if more and chunk else None,
        "key": list_key,
    }
    return {list_key: [render(i) for i in chunk], "meta": meta}
