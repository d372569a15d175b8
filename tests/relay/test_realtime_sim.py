"""Browser sessions through a real relay to the GA Realtime simulator.

The simulator refuses the beta header and checks the Bearer key, so a working session here
means the relay's upstream handshake is GA-clean. Its introspection (``/_sandbox/sessions``)
shows whether the relay left any upstream connection open, and its faults stand in for an
OpenAI outage.
"""

from __future__ import annotations

import json
import threading

import pytest

from tests.relay.conftest import Relay, Sim, fresh_ip, wait_closed, wait_for

pytestmark = pytest.mark.usefixtures("redis_url")

SESSION_UPDATE = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"], "instructions": "Be brief."},
}


@pytest.fixture(scope="module")
def relay(start_relay, sim: Sim) -> Relay:
    # These tests drive the simulator through the relay verbatim (the owned browser policy is
    # tested in test_browser_policy_live.py).
    return start_relay(
        sim.url, name="relay-sim", TRUSTED_PROXY_COUNT="1", BROWSER_SESSION_POLICY="passthrough"
    )


@pytest.fixture(autouse=True)
def clean_sim(sim: Sim) -> None:
    """Faults stay until cleared: every test starts from a simulator without any."""
    sim.reset()


def no_open_upstream(sim: Sim) -> None:
    wait_for(lambda: sim.open_sessions() == [])


def first_event(ws) -> dict:
    return json.loads(ws.recv())


def test_a_session_reaches_the_simulator_and_back(relay, sim):
    ws = relay.browser()
    assert first_event(ws)["type"] == "session.created"
    ws.send(json.dumps(SESSION_UPDATE))
    event = first_event(ws)
    while event["type"] != "session.updated":
        assert event["type"] != "error", event
        event = first_event(ws)
    assert event["session"]["instructions"] == "Be brief."
    ws.close()
    no_open_upstream(sim)


def test_upstream_refusing_connections_closes_1011(relay, sim):
    sim.fault({"reject_connects": 1})
    ws = relay.browser()
    code, reason, seen = wait_closed(ws)
    assert (code, reason, seen) == (1011, "upstream_unavailable", [])
    ws = relay.browser()  # the fault is spent; the next session works
    assert first_event(ws)["type"] == "session.created"
    ws.close()
    no_open_upstream(sim)


def test_upstream_dropping_mid_session_closes_the_browser(relay, sim):
    sim.fault({"drop_after_ms": 300})
    ws = relay.browser()
    assert first_event(ws)["type"] == "session.created"
    code, reason, _ = wait_closed(ws)
    assert code == 1011 and reason.startswith("upstream_")
    no_open_upstream(sim)


def test_wrong_api_key_is_an_upstream_failure(start_relay, sim):
    relay = start_relay(sim.url, name="relay-badkey", OPENAI_API_KEY="sk-wrong")
    ws = relay.browser()
    assert wait_closed(ws)[:2] == (1011, "upstream_unavailable")
    assert "HTTP 401" in relay.log()
    assert "sk-wrong" not in relay.log()


def test_time_limit_closes_both_sides(start_relay, sim):
    relay = start_relay(sim.url, name="relay-short", SESSION_TIME_LIMIT_SECONDS="1")
    ws = relay.browser()
    code, reason, seen = wait_closed(ws)
    assert (code, reason) == (4000, "time_limit")
    assert json.loads(seen[-1])["type"] == "system.time_limit"
    no_open_upstream(sim)


def test_fifty_concurrent_sessions_each_get_their_own_upstream(relay, sim):
    count = 50
    ids: dict[int, str] = {}
    errors: list[str] = []

    def browser(n: int) -> None:
        try:
            ws = relay.browser(ip=fresh_ip(), timeout=30)
            created = first_event(ws)
            ids[n] = created["session"]["id"]
            ws.send(json.dumps({**SESSION_UPDATE, "session": {
                **SESSION_UPDATE["session"], "instructions": f"session {n}"}}))  # fmt: skip
            event = first_event(ws)
            while event["type"] != "session.updated":
                event = first_event(ws)
            if event["session"]["instructions"] != f"session {n}":
                errors.append(f"{n} got {event['session']['instructions']}")
            ws.close()
        except Exception as exc:
            errors.append(f"{n}: {exc!r}")

    threads = [threading.Thread(target=browser, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(set(ids.values())) == count
    no_open_upstream(sim)


def test_a_refused_session_update_comes_back_through_the_relay_unapplied(relay, sim):
    ws = relay.browser()
    assert first_event(ws)["type"] == "session.created"
    bad = {**SESSION_UPDATE["session"], "output_modalities": ["text", "audio"], "foo": 1}
    ws.send(json.dumps({"type": "session.update", "event_id": "evt_b1", "session": bad}))
    error = first_event(ws)
    assert error["type"] == "error"
    # The first problem found is reported: here the unknown key.
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.foo'.",
        "param": "session.foo",
        "event_id": "evt_b1",
    }
    del bad["foo"]
    ws.send(json.dumps({"type": "session.update", "event_id": "evt_b2", "session": bad}))
    error = first_event(ws)["error"]
    assert (error["code"], error["param"], error["event_id"]) == (
        "invalid_value",
        "session.output_modalities",
        "evt_b2",
    )
    ws.send(json.dumps({"type": "response.audio.delta"}))  # a beta name: not a client event
    assert first_event(ws)["error"]["code"] == "invalid_value"
    [session] = sim.open_sessions()
    assert session["session"]["output_modalities"] == ["audio"]  # nothing was applied
    assert session["errors"] == ["unknown_parameter", "invalid_value", "invalid_value"]
    ws.close()
    no_open_upstream(sim)
