"""`python -m sandbox sms`, the operator's SMS round trip, run as a subprocess against the stack."""

from __future__ import annotations

import subprocess

from tests.sms.stack import Stack
from tests.support import PYTHON, base_env


def sandbox_sms(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # Later options win, so a test's own --timeout overrides the default here.
        [
            PYTHON,
            "-m",
            "sandbox",
            "sms",
            "--twilio-sim",
            stack.twilio_url,
            "--timeout",
            "60",
            *args,
        ],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_sms_prints_the_thread_with_the_reply(sms: Stack) -> None:
    done = sandbox_sms(sms, "Do you sell solar openers?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "(webhook 200)" in lines[0]
    assert lines[1].endswith("+14155550100: Do you sell solar openers?")
    assert "This is the GateFrames A.I. assistant." in lines[2]


def test_group_sms_without_mention_says_why_there_is_no_reply(sms: Stack) -> None:
    done = sandbox_sms(sms, "see you at 5", "--group", "+14155550101", "--timeout", "3")
    assert done.returncode == 1
    assert "mention @ai" in done.stderr


def test_unreachable_simulator_is_a_clear_error(sms: Stack) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "sandbox", "sms", "hi", "--twilio-sim", "http://127.0.0.1:9"],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot reach the Twilio simulator" in done.stderr and "make run" in done.stderr
