"""relay.call.actions against the Twilio simulator (a subprocess) and the suite's Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from common import call_keys
from common.config import Config, load_config
from common.twilio_client import make_client
from relay.call import actions as call_actions
from relay.call.tools import Nothing, SendText, TakeMessage, ToolBox, ToolSettings
from sandbox import services
from sandbox.services import Credentials, clean_environment
from sandbox.stack import ProcessStack
from tests.conftest import REDIS_URL
from tests.support import free_port, http_json

BOT = "+14082605145"
CALLER = "+14155550100"
STAFF = "+14155550199"
PUBLIC = "https://web.gateframes.example"


@dataclass
class Sim:
    url: str
    account_sid: str
    auth_token: str

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, f"{self.url}/_sandbox/{path}", body)

    def config(self, **extra: str) -> Config:
        env = {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_API_BASE_URL": self.url,
            "TWILIO_TIMEOUT_SECONDS": "5",
            "PUBLIC_BASE_URL": PUBLIC,
            "BOT_PROJECTED_ADDRESS": BOT,
            "STAFF_TRANSFER_NUMBER": STAFF,
            "REDIS_URL": REDIS_URL,
            "APP_ENV": "test",
            **extra,
        }
        return load_config(env)


@pytest.fixture(scope="module")
def sim_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    port, creds = free_port(), Credentials.fresh()
    with ProcessStack(tmp_path_factory.mktemp("call-actions"), clean_environment()) as stack:
        stack.run(services.twilio_sim(port, creds, phone_numbers=(BOT,)))
        yield Sim(f"http://127.0.0.1:{port}", creds.account_sid, creds.auth_token)


@pytest.fixture
def sim(sim_proc: Sim) -> Sim:
    sim_proc.control("POST", "reset")
    sim_proc.control("DELETE", "faults")
    return sim_proc


def live_call(sim: Sim, cfg: Config) -> str:
    """A call in progress, as the relay's calls are while the assistant talks."""
    sid = make_client(cfg).calls.create(to=CALLER, from_=BOT, url=PUBLIC + "/twilio/voice").sid
    sim.control("POST", f"calls/{sid}", {"status": "in-progress", "fetch_twiml": False})
    return sid


def call_record(sim: Sim, sid: str) -> dict[str, Any]:
    return next(c for c in sim.control("GET", "state")["calls"] if c["sid"] == sid)


# -- send_text ------------------------------------------------------------------------------
def test_send_text_sends_one_sms_from_the_bot_number(sim: Sim) -> None:
    cfg = sim.config()
    body = "This is the GateFrames A.I. assistant. Slide gates: gateframes.com/slide"
    assert call_actions.send_text(make_client(cfg), cfg, CALLER, body, "CA1") == "sent"
    [sms] = sim.control("GET", "state")["sms"]
    assert (sms["to"], sms["from"], sms["body"]) == (CALLER, BOT, body)


def test_send_text_to_a_number_twilio_refuses(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    cfg = sim.config()
    with caplog.at_level(logging.WARNING, logger="relay.call.actions"):
        result = call_actions.send_text(make_client(cfg), cfg, "555-0100", "hi")
    assert result == "refused"  # 21211: a short word, never Twilio's text
    assert "21211" in caplog.text  # which stays in the log
    assert sim.control("GET", "state")["sms"] == []


def test_send_text_from_a_number_not_on_the_account_fails(sim: Sim) -> None:
    cfg = sim.config(BOT_PROJECTED_ADDRESS="+14155550999")  # 21606
    assert call_actions.send_text(make_client(cfg), cfg, CALLER, "hi") == "failed"
    assert sim.control("GET", "state")["sms"] == []


def test_send_text_retries_a_server_error_once(sim: Sim) -> None:
    cfg = sim.config()
    fault = {"method": "POST", "path_contains": "/Messages.json", "status": 503, "count": 1}
    sim.control("POST", "faults", fault)
    assert call_actions.send_text(make_client(cfg), cfg, CALLER, "hi") == "sent"
    assert len(sim.control("GET", "state")["sms"]) == 1


def test_send_text_gives_up_after_two_server_errors(sim: Sim) -> None:
    cfg = sim.config()
    fault = {"method": "POST", "path_contains": "/Messages.json", "status": 503, "count": 2}
    sim.control("POST", "faults", fault)
    assert call_actions.send_text(make_client(cfg), cfg, CALLER, "hi") == "failed"
    assert sim.control("GET", "state")["sms"] == []


def test_send_text_with_twilio_unreachable_fails() -> None:
    cfg = load_config(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "x",
            "TWILIO_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "APP_ENV": "test",
        }
    )
    assert call_actions.send_text(make_client(cfg), cfg, CALLER, "hi") == "failed"


# -- transfer -------------------------------------------------------------------------------
def test_transfer_redirects_the_live_call_and_keeps_the_reason_out_of_the_url(
    sim: Sim, redis_client: redis.Redis
) -> None:
    cfg = sim.config()
    sid = live_call(sim, cfg)
    reason = "wants a quote & install date"
    result = call_actions.transfer(make_client(cfg), cfg, sid, CALLER, reason, redis_client)
    assert result == "redirected"
    record = call_record(sim, sid)
    [update] = record["updates"]
    assert update["Url"] == [PUBLIC + "/twilio/voice/transfer"]
    assert update["Method"] == ["POST"] and "Status" not in update
    assert record["url"] == PUBLIC + "/twilio/voice/transfer"
    assert "quote" not in record["url"]
    assert call_keys.load_transfer(redis_client, sid) == {"caller": CALLER, "reason": reason}
    assert 0 < redis_client.ttl(call_keys.transfer_key(sid)) <= call_keys.TRANSFER_TTL_SECONDS


def test_transfer_of_a_call_that_is_not_in_progress_fails(
    sim: Sim, redis_client: redis.Redis
) -> None:
    cfg = sim.config()
    sid = make_client(cfg).calls.create(to=CALLER, from_=BOT, url=PUBLIC + "/twilio/voice").sid
    assert call_actions.transfer(make_client(cfg), cfg, sid, CALLER, "x", redis_client) == "failed"
    assert call_record(sim, sid)["updates"] == []  # 21220 refused it


def test_transfer_without_a_staff_number_does_nothing(sim: Sim, redis_client: redis.Redis) -> None:
    cfg = sim.config(STAFF_TRANSFER_NUMBER="")
    sid = live_call(sim, cfg)
    assert call_actions.transfer(make_client(cfg), cfg, sid, CALLER, "x", redis_client) == "failed"
    assert call_record(sim, sid)["updates"] == []


def test_transfer_still_happens_when_redis_is_down(sim: Sim) -> None:
    cfg = sim.config()
    sid = live_call(sim, cfg)
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    assert call_actions.transfer(make_client(cfg), cfg, sid, CALLER, "x", dead) == "redirected"
    assert len(call_record(sim, sid)["updates"]) == 1


# -- hang_up --------------------------------------------------------------------------------
def test_hang_up_completes_the_call(sim: Sim) -> None:
    cfg = sim.config()
    sid = live_call(sim, cfg)
    assert call_actions.hang_up(make_client(cfg), sid) == "completed"
    record = call_record(sim, sid)
    assert record["status"] == "completed" and record["updates"] == [{"Status": ["completed"]}]


def test_hang_up_of_an_unknown_call_fails(sim: Sim) -> None:
    cfg = sim.config()
    assert call_actions.hang_up(make_client(cfg), "CA" + "0" * 32) == "failed"


# -- take_message ---------------------------------------------------------------------------
def test_take_message_is_kept_in_the_calls_notes(redis_client: redis.Redis) -> None:
    sid = "CA" + "4" * 32
    msg = TakeMessage("Ana", "+14155550123", "Call me about a solar opener")
    assert call_actions.take_message(sid, msg, redis_client) == "stored"
    [note] = call_keys.read_notes(redis_client, sid)
    assert note["kind"] == "message" and note["at"].endswith("Z")
    assert (note["name"], note["callback_number"], note["message"]) == (
        "Ana",
        "+14155550123",
        "Call me about a solar opener",
    )
    assert 0 < redis_client.ttl(call_keys.notes_key(sid)) <= call_keys.NOTES_TTL_SECONDS


def test_take_message_with_redis_down_fails() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    msg = TakeMessage("Ana", "+14155550123", "hi")
    assert call_actions.take_message("CA" + "5" * 32, msg, dead) == "failed"


# -- from a tool call to its result -----------------------------------------------------------
def test_a_send_text_tool_call_ends_in_one_sms(sim: Sim) -> None:
    cfg = sim.config()
    tools = ToolBox(ToolSettings.from_config(cfg), caller=CALLER)
    pending = tools.handle("send_text", '{"message": "Swing gate kits"}', "call_1", now=0.0)
    result = call_actions.perform(make_client(cfg), cfg, "CA1", CALLER, pending.action)
    done = tools.finish(pending, result)
    assert (result, done.outcome) == ("sent", "sent")
    [sms] = sim.control("GET", "state")["sms"]
    assert (sms["to"], sms["from"]) == (CALLER, BOT)
    assert sms["body"] == "This is the GateFrames A.I. assistant. Swing gate kits"
    assert isinstance(pending.action, SendText)
    assert call_actions.perform(make_client(cfg), cfg, "CA1", CALLER, Nothing()) == ""
