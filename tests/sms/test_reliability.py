"""Failures: OpenAI down, a worker killed mid-task, Redis unreachable during a webhook."""

from __future__ import annotations

from common.prompts import MAINTENANCE_REPLY
from tests.sms.stack import Stack, http_json

ALICE = "+14155550100"


def test_openai_failing_gets_maintenance_reply_after_retries(sms: Stack) -> None:
    sms.openai_fault(status=500, count=100)
    conv = sms.text(ALICE, "hello?")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv, timeout=60)
    assert reply["body"] == MAINTENANCE_REPLY
    # TASK_MAX_RETRIES=3 in the stack: the first try and three retries.
    assert len(sms.chat_requests()) == 4
    sms.settle()
    assert len(sms.bot_messages(conv)) == 1
    assert '"outcome": "maintenance"' in sms.procs["worker"].log_text().replace('":"', '": "')


def test_openai_recovering_within_retries_gets_real_reply(sms: Stack) -> None:
    sms.openai_fault(status=503, count=2)
    conv = sms.text(ALICE, "are you there?")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv, timeout=60)
    assert reply["body"] != MAINTENANCE_REPLY and "are you there?" in reply["body"]


def test_twilio_post_failing_then_recovering_posts_once(sms: Stack) -> None:
    sms.twilio_fault(method="POST", path_contains="/Messages", status=503, count=2)
    conv = sms.text(ALICE, "twilio hiccup")["conversation_sid"]
    sms.wait_bot_messages(conv, timeout=60)
    sms.settle()
    assert len(sms.bot_messages(conv)) == 1


def test_healthz_reports_redis(sms: Stack) -> None:
    assert http_json("GET", sms.web_url + "/healthz") == {"status": "ok", "redis": "ok"}
