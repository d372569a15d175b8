"""The console's pages: home, a call, a conversation, search, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Response, render_template, request

from common import live_calls
from common.names import SMS_MAX_CHARS
from common.redis_util import get_redis
from store import reads
from webhooks.staff.auth import current_staff, login_required
from webhooks.staff.blueprint import bp
from webhooks.staff.views import (
    call_or_404,
    cfg,
    conversation_or_404,
    held,
    require_log,
    safe_link,
)

EXPORT_FIELDS = ("kind", "at", "id", "from", "to", "direction", "duration_seconds", "outcome",
                 "by", "text")  # fmt: skip
MAX_EXPORT_DAYS = 366


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> Any:
    if request.path.startswith("/staff/api/"):
        return {"error": "not found"}, 404
    return render_template("staff/error.html", title="Not found", message="Nothing here."), 404


@bp.get("/")
@login_required
def home() -> str:
    require_log()
    today = reads.start_of_day()
    threads = reads.threads(since=today, limit=100)
    return render_template(
        "staff/home.html",
        live=live_calls.listing(get_redis()),
        calls=reads.calls(since=today, limit=100),
        threads=threads,
        taken={t.conversation_sid for t in threads if held(t.conversation_sid)},
        callbacks=reads.callbacks(open_only=True),
        done=reads.callbacks(open_only=False, limit=10),
    )


@bp.get("/calls/<call_sid>")
@login_required
def call_page(call_sid: str) -> str:
    require_log()
    found = call_or_404(call_sid)
    return render_template(
        "staff/call.html",
        call=found,
        recording=safe_link(found.recording_url),
        callbacks=reads.call_callbacks(found.call_sid),
    )


@bp.get("/conversations/<conversation_sid>")
@login_required
def conversation_page(conversation_sid: str) -> str:
    require_log()
    sid = conversation_or_404(conversation_sid)
    return render_template(
        "staff/conversation.html",
        sid=sid,
        messages=reads.messages(sid),
        holder=held(sid),
        me=current_staff(),
        history=reads.takeovers(sid),
        idle_minutes=cfg().takeover_idle_minutes,
        max_chars=SMS_MAX_CHARS,
    )


@bp.get("/search")
@login_required
def search() -> str:
    require_log()
    q = request.args.get("q", "").strip()[:200]
    return render_template(
        "staff/search.html", q=q, calls=reads.calls(q, 50), threads=reads.threads(q, 50)
    )


def _day(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/export")
@login_required
def export() -> Any:
    require_log()
    if "from" not in request.args and "to" not in request.args:
        today = dt.datetime.now(dt.UTC).date()
        return render_template("staff/export.html", start=today - dt.timedelta(days=7), end=today)
    start, end = _day(request.args.get("from", "")), _day(request.args.get("to", ""))
    error = None
    if start is None or end is None:
        error = "Give both dates as YYYY-MM-DD."
    elif end < start:
        error = "The end date is before the start date."
    elif (end - start).days >= MAX_EXPORT_DAYS:
        error = f"Export at most {MAX_EXPORT_DAYS} days at a time."
    if error or start is None or end is None:
        page = render_template("staff/export.html", start=start, end=end, error=error)
        return page, 400
    begin = dt.datetime.combine(start, dt.time(), dt.UTC)
    rows = reads.export_rows(
        begin, dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(days=1)
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    name = f"gateframes-log-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
