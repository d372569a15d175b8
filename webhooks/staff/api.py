"""``/staff/api``: the console's data as JSON, for its own pages and for scripts (same
session; 401 without one)."""

from __future__ import annotations

from typing import Any

from flask import request

from common import live_calls
from common.redis_util import get_redis
from store import reads
from webhooks.staff.auth import api_login_required
from webhooks.staff.blueprint import bp
from webhooks.staff.views import (
    call_json,
    call_or_404,
    call_row,
    conversation_json,
    conversation_or_404,
    require_log,
    thread_json,
)


def _limit() -> int | None:
    raw = request.args.get("limit", "")
    return int(raw) if raw.isdigit() else None


@bp.get("/api/calls")
@api_login_required
def api_calls() -> dict[str, Any]:
    require_log()
    found = reads.calls(request.args.get("q", ""), _limit())
    return {"calls": [call_row(c) for c in found]}


@bp.get("/api/calls/<call_sid>")
@api_login_required
def api_call(call_sid: str) -> dict[str, Any]:
    require_log()
    return call_json(call_or_404(call_sid))


@bp.get("/api/conversations")
@api_login_required
def api_conversations() -> dict[str, Any]:
    require_log()
    found = reads.threads(request.args.get("q", ""), _limit())
    return {"conversations": [thread_json(t) for t in found]}


@bp.get("/api/conversations/<conversation_sid>")
@api_login_required
def api_conversation(conversation_sid: str) -> dict[str, Any]:
    require_log()
    return conversation_json(conversation_or_404(conversation_sid))


@bp.get("/api/live")
@api_login_required
def api_live() -> dict[str, Any]:
    return {"calls": live_calls.listing(get_redis())}
