"""The browser session's decisions without sockets."""

from __future__ import annotations

import orjson

from common.end_reasons import EndReason
from relay.browser.session import BrowserCore, Close, ToBrowser, ToUpstream
from relay.wire.codec import OP_BINARY, OP_TEXT


def error_code(out) -> str:
    assert isinstance(out, ToBrowser)
    event = orjson.loads(out.data)
    assert event["type"] == "error"
    return event["error"]["code"]


def test_frames_before_open_are_queued_then_released_in_order():
    core = BrowserCore(max_queue_bytes=1 << 20)
    frames = [orjson.dumps({"type": "t", "i": i}) for i in range(5)]
    assert [core.browser_message(OP_TEXT, f) for f in frames] == [None] * 5
    assert core.upstream_open() == frames
    assert core.upstream_open() == []


def test_after_open_the_exact_bytes_go_upstream():
    core = BrowserCore(1 << 20)
    core.upstream_open()
    raw = b'{ "type" : "x",  "n": 1.50, "s": "\\u00e9" }'
    assert core.browser_message(OP_TEXT, raw) == ToUpstream(raw)


def test_bad_input_is_answered_not_forwarded():
    core = BrowserCore(1 << 20)
    core.upstream_open()
    assert error_code(core.browser_message(OP_TEXT, b"{not json")) == "invalid_json"
    assert error_code(core.browser_message(OP_TEXT, b"")) == "invalid_json"
    assert error_code(core.browser_message(OP_TEXT, b"[1, 2]")) == "invalid_event"
    assert error_code(core.browser_message(OP_BINARY, b"\x00")) == "unsupported_frame"


def test_bad_input_before_open_is_not_queued():
    core = BrowserCore(1 << 20)
    assert isinstance(core.browser_message(OP_TEXT, b"nope"), ToBrowser)
    assert core.upstream_open() == []


def test_queue_has_a_ceiling():
    core = BrowserCore(max_queue_bytes=100)
    frame = b'{"a":"' + b"x" * 40 + b'"}'
    assert core.browser_message(OP_TEXT, frame) is None
    assert core.browser_message(OP_TEXT, frame) is None
    out = core.browser_message(OP_TEXT, frame)
    assert isinstance(out, Close) and out.code == 1013


def test_time_limit_notice_and_close():
    out = BrowserCore.time_limit()
    assert (out.code, out.reason) == (4000, "time_limit")
    notice = orjson.loads(out.notice)
    assert notice["type"] == "system.time_limit" and notice["message"]


def test_upstream_endings_map_to_browser_closes():
    assert BrowserCore.upstream_closed(1000) == Close(1000, "upstream_closed")
    assert BrowserCore.upstream_closed(None).code == 1011
    assert BrowserCore.upstream_closed(4000).code == 1011
    assert BrowserCore.upstream_failed() == Close(1011, "upstream_unavailable")
    assert BrowserCore.upstream_closed(4000).reason == "upstream_closed_4000"


def test_the_first_end_stands():
    core = BrowserCore(1 << 20)
    assert core.ended is None
    first = core.end(BrowserCore.time_limit())
    assert core.end(BrowserCore.browser_closed()) is first is core.ended
    assert core.ended.reason == EndReason.TIME_LIMIT


def test_the_server_side_ends_keep_their_codes_and_words():
    assert BrowserCore.service_restart() == Close(1012, "service_restart")
    assert BrowserCore.relay_error() == Close(1011, "relay_error")
    assert BrowserCore.idle() == Close(1000, "idle_timeout")
    assert BrowserCore.browser_closed() == Close(1000, "browser_closed")
