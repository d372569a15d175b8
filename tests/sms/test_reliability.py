"""Failures: OpenAI down, a worker killed mid-task, Redis unreachable during a webhook."""

from __future__ import annotations

import urllib.request

from common.prompts import MAINTENANCE_REPLY
from tests.sms.stack import Stack
from tests.support import http_json, wait_for

ALICE = "+14155550100"


def test_openai_failing_gets_maintenance_reply_after_retries(sms: Stack) -> None:
    sms.openai_fault(status=500, count=100)
    sent = sms.text(ALICE, "hello?")
    conv = sent["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv, timeout=60)
    assert reply["body"] == MAINTENANCE_REPLY
    # TASK_MAX_RETRIES=3 in the stack: the first try and three retries.
    assert len(sms.chat_requests()) == 4
    assert sms.wait_outcome(sent["message_sid"])["outcome"] == "maintenance"
    assert len(sms.bot_messages(conv)) == 1


def test_openai_recovering_within_retries_gets_real_reply(sms: Stack) -> None:
    sms.openai_fault(status=503, count=2)
    conv = sms.text(ALICE, "are you there?")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv, timeout=60)
    assert reply["body"] != MAINTENANCE_REPLY and "are you there?" in reply["body"]


def test_twilio_post_failing_then_recovering_posts_once(sms: Stack) -> None:
    sms.twilio_fault(method="POST", path_contains="/Messages", status=503, count=2)
    sent = sms.text(ALICE, "twilio hiccup")
    conv = sent["conversation_sid"]
    sms.wait_bot_messages(conv, timeout=60)
    assert sms.wait_outcome(sent["message_sid"], timeout=60)["outcome"] == "replied"
    assert len(sms.bot_messages(conv)) == 1


def test_healthz_reports_redis(sms: Stack) -> None:
    assert http_json("GET", sms.web_url + "/healthz") == {"status": "ok", "redis": "ok"}


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in an exposition text (0 when absent)."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        series, _, rest = head.partition("{")
        if series == name and set(rest.rstrip("}").split(",")) == want:
            return float(value)
    return 0.0


def test_metrics_count_webhooks_retries_and_task_runs_across_processes(sms: Stack) -> None:
    sms.openai_fault(status=503, count=1)
    conv = sms.text(ALICE, "count me")["conversation_sid"]
    sms.wait_bot_messages(conv, timeout=60)
    sms.signed_post({"EventType": "onMessageAdded"}, signature="forged")

    def scrape() -> str:
        req = urllib.request.Request(sms.web_url + "/metrics")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()

    # The worker records a run when the task returns, just after posting the reply.
    task = "gateframes.convo.handle_event"
    runs, events = "gateframes_task_runs_total", "gateframes_webhook_events_total"
    text = wait_for(
        lambda: (t := scrape()) and _metric(t, runs, task=task, outcome="replied") and t
    )
    assert _metric(text, events, route="convo", outcome="queued") >= 1
    # the signature check counts its refusals under the view's own route label
    assert _metric(text, events, route="convo", outcome="forbidden") == 1
    assert _metric(text, "gateframes_task_retries_total", task=task) == 1
    assert _metric(text, runs, task=task, outcome="retry") == 1
    assert _metric(text, "gateframes_task_seconds_count", task=task) >= 2


def test_openai_timing_out_is_retried_then_answered(sms: Stack) -> None:
    sms.openai_fault(status=200, count=1, delay_seconds=6)  # longer than CHAT_TIMEOUT_SECONDS=3
    sent = sms.text(ALICE, "slow model?")
    conv = sent["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv, timeout=60)
    assert reply["body"] != MAINTENANCE_REPLY and "slow model?" in reply["body"]
    assert len(sms.chat_requests()) == 2  # the timed-out try and the retry
    assert "APITimeoutError" in sms.log_text("worker")
    # the stalled first request finishing late must not add a reply: once the simulator has
    # answered it (its record gets a status), the absence means something
    wait_for(lambda: all("status" in r for r in sms.chat_requests()), timeout=15)
    assert sms.wait_outcome(sent["message_sid"])["outcome"] == "replied"
    assert len(sms.bot_messages(conv)) == 1
