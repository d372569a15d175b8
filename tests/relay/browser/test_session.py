"""Browser sessions through a real relay process to a byte-exact echo upstream, with
``BROWSER_SESSION_POLICY=passthrough`` (the relay adds nothing and strips nothing).

The echo upstream (tests/relay/doubles.py) records exactly what reaches it and can send exact
text back, so "verbatim" is checked byte for byte; protocol behaviour against the Realtime
simulator lives in test_realtime_sim.py, the owned policy in test_browser_policy_live.py.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest
import websocket

from tests.relay.conftest import (
    API_KEY,
    Relay,
    fresh_ip,
    http,
    metric,
    wait_closed,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("redis_url")
#: The echo's test commands are not Realtime events: the owned policy would refuse them.
PASSTHROUGH = "passthrough"


@pytest.fixture(scope="module")
def relay(start_relay, echo) -> Relay:
    return start_relay(
        echo.url,
        TRUSTED_PROXY_COUNT="1",
        MAX_FRAME_BYTES="65536",
        BROWSER_SESSION_POLICY=PASSTHROUGH,
    )


@pytest.fixture(autouse=True)
def clean_echo(echo):
    echo.reset()
    yield
    # A session closed at the end of a test may still be finishing its upstream handshake;
    # let it settle so it cannot show up in the next test's connection list.
    wait_for(lambda: echo.open_count() == 0)
    echo.reset()


def say(raw: str) -> str:
    return json.dumps({"type": "test.say", "raw": raw})


def talked(echo) -> list:
    """Upstream connections that received something.

    A session a previous test closed at once may finish its upstream handshake after that
    test's teardown (the echo server's thread can lag on a busy machine); such a connection
    never receives a message, so counting only connections that talked keeps tests apart.
    """
    return [c for c in list(echo.conns) if c.received]


def only_conn(echo):
    conns = wait_for(lambda: len(talked(echo)) == 1 and talked(echo))
    return conns[0]


# ==== the upstream handshake ===================================================================
def test_upstream_gets_ga_handshake_with_bearer_only(relay, echo):
    ws = relay.browser()
    ws.send('{"type":"ping"}')
    assert ws.recv() == '{"type":"ping"}'
    conn = only_conn(echo)
    assert conn.path == "/v1/realtime?model=gpt-realtime-2.1"
    assert conn.headers["authorization"] == f"Bearer {API_KEY}"
    assert "openai-beta" not in conn.headers
    ws.close()


def test_first_requested_subprotocol_is_echoed(relay):
    ws = relay.browser(protocols=["realtime", "openai-insecure-api-key.ek_x"])
    assert ws.getsubprotocol() == "realtime"
    ws.close()
    ws = relay.browser()
    assert ws.getsubprotocol() is None
    ws.close()


# ==== verbatim both ways =======================================================================
def test_text_passes_through_byte_for_byte_both_ways(relay, echo):
    odd = [
        '{ "type" : "conversation.item.create" ,"n":1.50,"e":1E3 }',
        '{"type":"x","s":"caf\\u00e9 \u00e9 \u2713 \U0001f6aa","nested":{"a":[1,2,{"b":null}]}}',
        '{"type":"input_audio_buffer.append","audio":"' + "A" * 60000 + '"}',
    ]
    ws = relay.browser()
    for text in odd:
        ws.send(text)
        assert ws.recv() == text  # echoed: relay -> upstream -> relay, unchanged
    down = '{"z":1,   "type":"response.output_text.delta","delta":"\u00e9\\n"}'
    ws.send(say(down))
    assert ws.recv() == down
    assert only_conn(echo).received == [*odd, say(down)]
    ws.close()


def test_frames_sent_before_upstream_opens_are_delivered_in_order(relay, echo):
    echo.handshake_delay = 1.0
    ws = relay.browser()
    early = [json.dumps({"type": "early", "i": i}) for i in range(25)]
    for text in early:
        ws.send(text)
    assert talked(echo) == []  # still connecting: these were queued by the relay
    late = [json.dumps({"type": "late", "i": i}) for i in range(25)]
    for text in late:
        ws.send(text)
    got = [ws.recv() for _ in range(50)]
    assert got == early + late
    assert only_conn(echo).received == early + late
    ws.close()


# ==== bad input ================================================================================
def test_bad_json_is_reported_never_forwarded_and_the_session_lives_on(relay, echo):
    ws = relay.browser()
    for bad in ("{not json", "", "[1,2]", '"just a string"'):
        ws.send(bad)
        event = json.loads(ws.recv())
        assert event["type"] == "error"
        assert event["error"]["code"] in ("invalid_json", "invalid_event")
    ws.send_binary(b"\x00\x01")
    assert json.loads(ws.recv())["error"]["code"] == "unsupported_frame"
    ws.send('{"type":"ok"}')
    assert ws.recv() == '{"type":"ok"}'
    assert only_conn(echo).received == ['{"type":"ok"}']
    ws.close()


def test_frame_over_the_size_limit_closes_1009_and_releases_upstream(relay, echo):
    ws = relay.browser()
    ws.send('{"type":"warmup"}')
    ws.recv()
    ws.send('{"a":"' + "x" * 70000 + '"}')
    code, _, _ = wait_closed(ws)
    assert code == 1009
    wait_for(lambda: echo.open_count() == 0)
    assert only_conn(echo).received == ['{"type":"warmup"}']


def test_invalid_utf8_closes_1007(relay, echo):
    ws = relay.browser()
    ws.send('{"type":"warmup"}')
    ws.recv()
    ws.send_frame(websocket.ABNF.create_frame(b'{"a":"\xff"}', websocket.ABNF.OPCODE_TEXT))
    assert wait_closed(ws)[0] == 1007
    wait_for(lambda: echo.open_count() == 0)


def test_garbage_bytes_do_not_hurt_the_process(relay):
    ws = relay.browser()
    ws.sock.sendall(b"\x81\x05hello")  # an unmasked frame: a protocol error from a client
    assert wait_closed(ws)[0] == 1002
    ws = relay.browser()
    ws.sock.sendall(b"\x00\xff" * 64)  # noise that claims an enormous length
    assert wait_closed(ws)[0] == 1009
    with socket.create_connection(("127.0.0.1", relay.port)) as raw:
        raw.sendall(b"\x16\x03\x01 definitely not http\r\n\r\n")
        raw.settimeout(5)
        raw.recv(1024)
    status, _, _ = http("GET", relay.http_base + "/healthz")
    assert status == 200
    ws = relay.browser()
    ws.send('{"type":"still alive"}')
    assert ws.recv() == '{"type":"still alive"}'
    ws.close()


# ==== endings ==================================================================================
def test_browser_close_releases_the_upstream(relay, echo):
    ws = relay.browser()
    ws.send('{"type":"x"}')
    ws.recv()
    ws.close()
    wait_for(lambda: echo.open_count() == 0)
    wait_for(lambda: "reason=browser_closed" in relay.log())


def test_the_server_records_each_session_once(relay, echo):
    """``run()``'s summary is counted and logged by the server, once per session."""
    closed = 'relay_sessions_total{reason="browser_closed",surface="browser"}'
    before = metric(relay, closed)
    ip = fresh_ip()
    ws = relay.browser(ip=ip)
    ws.send('{"type":"x"}')
    ws.recv()
    ws.close()

    def ended() -> list[str]:
        lines = relay.log().splitlines()
        return [ln for ln in lines if "browser session ended" in ln and f"client_ip={ip}" in ln]

    [line] = wait_for(ended)
    assert "(1 in, 1 out, 0 policed, close 1000)" in line and "reason=browser_closed" in line
    assert wait_for(lambda: metric(relay, closed) >= before + 1)


def test_browser_vanishing_without_close_releases_the_upstream(relay, echo):
    ws = relay.browser()
    ws.send('{"type":"x"}')
    ws.recv()
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()
    wait_for(lambda: echo.open_count() == 0)


@pytest.mark.parametrize("code, expected", [(1000, 1000), (4001, 1011)])
def test_upstream_close_closes_the_browser(relay, echo, code, expected):
    ws = relay.browser()
    ws.send(json.dumps({"type": "test.close", "code": code}))
    got, reason, _ = wait_closed(ws)
    assert got == expected and reason.startswith("upstream_closed")
    wait_for(lambda: echo.open_count() == 0)


def test_upstream_unreachable_closes_1011_with_a_reason(start_relay):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = dead.getsockname()[1]
    relay = start_relay(
        f"ws://127.0.0.1:{port}/v1/realtime",
        name="dead-upstream",
        BROWSER_SESSION_POLICY=PASSTHROUGH,
    )
    ws = relay.browser()
    ws.send('{"type":"queued, then dropped"}')
    code, reason, seen = wait_closed(ws)
    assert (code, reason, seen) == (1011, "upstream_unavailable", [])
    dead.close()
    assert "reason=upstream_unavailable" in relay.log()


def test_time_limit_notice_then_close_4000(start_relay, echo):
    relay = start_relay(
        echo.url,
        name="short",
        SESSION_TIME_LIMIT_SECONDS="1.5",
        BROWSER_SESSION_POLICY=PASSTHROUGH,
    )
    ws = relay.browser()
    ws.send('{"type":"hello"}')
    code, reason, seen = wait_closed(ws)
    assert (code, reason) == (4000, "time_limit")
    assert seen[0] == '{"type":"hello"}'
    notice = json.loads(seen[-1])
    assert notice["type"] == "system.time_limit" and notice["message"]
    wait_for(lambda: echo.open_count() == 0)


# ==== many at once =============================================================================
def test_fifty_concurrent_sessions_without_cross_talk(relay, echo):
    sessions, rounds = 50, 20
    errors: list[str] = []
    barrier = threading.Barrier(sessions)

    def browser(n: int) -> None:
        try:
            ws = relay.browser(ip=fresh_ip(), timeout=30)
            barrier.wait(timeout=30)
            for i in range(rounds):
                text = json.dumps({"type": "t", "session": n, "i": i})
                ws.send(text)
                got = ws.recv()
                if got != text:
                    errors.append(f"session {n} round {i}: got {got[:80]}")
            ws.close()
        except Exception as exc:
            errors.append(f"session {n}: {exc!r}")

    threads = [threading.Thread(target=browser, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    conns = wait_for(lambda: len(talked(echo)) == sessions and talked(echo))
    for conn in conns:
        owners = {json.loads(m)["session"] for m in conn.received}
        assert len(owners) == 1 and len(conn.received) == rounds
    wait_for(lambda: echo.open_count() == 0)


def test_sigterm_closes_sessions_with_1012_and_exits(start_relay, echo):
    relay = start_relay(echo.url, name="deploy", BROWSER_SESSION_POLICY=PASSTHROUGH)
    ws = relay.browser()
    ws.send('{"type":"x"}')
    ws.recv()
    relay.proc.popen.terminate()
    assert wait_closed(ws)[:2] == (1012, "service_restart")  # the page reconnects
    assert relay.proc.popen.wait(15) == 0
    wait_for(lambda: echo.open_count() == 0)


def test_a_thousand_malformed_frames_are_answered_and_others_keep_talking(relay, echo):
    bystander = relay.browser()
    ws = relay.browser()
    shapes = ["{not json", "[1,2]", '"s"', "null", "", '{"type":', "\u00e9\u00e9"]
    for n in range(1000):
        ws.send(shapes[n % len(shapes)])
        if n % 100 == 0:  # the bystander is served all along
            bystander.send(f'{{"type":"tick","n":{n}}}')
            assert bystander.recv() == f'{{"type":"tick","n":{n}}}'
    codes = [json.loads(ws.recv())["error"]["code"] for _ in range(1000)]
    assert set(codes) <= {"invalid_json", "invalid_event"} and len(codes) == 1000
    ws.send('{"type":"fine"}')
    assert ws.recv() == '{"type":"fine"}'
    conns = wait_for(lambda: len(talked(echo)) == 2 and talked(echo))
    assert sorted(len(c.received) for c in conns) == [1, 10]  # nothing malformed went upstream
    ws.close()
    bystander.close()
