"""Mentions and @call/@group parsing (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.parsing import mentions_ai, parse_command, strip_mention


@pytest.mark.parametrize(
    "text",
    [
        "@ai what gates do you sell?",
        "hey @AI: help",
        "@Ai",
        "question for @ai.",
        "(@ai) hi",
        "ok @ai, thanks",
        "@ai:price?",
    ],
)
def test_mention_detected(text: str) -> None:
    assert mentions_ai(text)


@pytest.mark.parametrize(
    "text",
    [
        "mail@ai.com is my address",
        "see @ai.com",
        "@aid is not a mention",
        "said",
        "AI is cool",
        "x@ai",
        "#@ai-team",
        "",
    ],
)
def test_not_a_mention(text: str) -> None:
    assert not mentions_ai(text)


def test_strip_mention() -> None:
    assert strip_mention("@ai: what is a slide gate?") == "what is a slide gate?"
    assert strip_mention("Hey @AI can you help") == "Hey can you help"
    assert strip_mention("thanks @ai.") == "thanks."
    assert strip_mention("write to mail@ai.com @ai") == "write to mail@ai.com"


def test_call_several_formats() -> None:
    cmd = parse_command("@call 4155550000, (415) 555-0001 415.555.0002 +1 415 555 0003")
    assert cmd is not None and cmd.name == "call"
    assert cmd.numbers == ["+14155550000", "+14155550001", "+14155550002", "+14155550003"]
    assert cmd.invalid == []


def test_call_reports_invalid_and_dedupes() -> None:
    cmd = parse_command("please @CALL: 4155550000 and 12345 and 415-555-0000")
    assert cmd is not None
    assert cmd.numbers == ["+14155550000"]
    assert cmd.invalid == ["12345"]


def test_group_command() -> None:
    cmd = parse_command("@group 415 555 0100 4155550101")
    assert cmd is not None and cmd.name == "group"
    assert cmd.numbers == ["+14155550100", "+14155550101"]


def test_no_command_inside_address() -> None:
    assert parse_command("mail@call.com 4155550000") is None
    assert parse_command("no command here") is None


@given(st.text(max_size=200))
def test_parsers_never_crash(text: str) -> None:
    mentions_ai(text)
    stripped = strip_mention(text)
    assert not mentions_ai(stripped) or "@ai" in text.lower()
    cmd = parse_command(text)
    if cmd is not None:
        assert all(n.startswith("+1") and len(n) == 12 for n in cmd.numbers)


@given(
    st.integers(min_value=2, max_value=9),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=2, max_value=9),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=9999),
    st.sampled_from(
        ["{a}{e}{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "+1 {a} {e} {l}", "1-{a}-{e}-{l}"]
    ),
)
def test_any_written_form_normalizes(a1, a2, e1, e2, line, form) -> None:
    area, exch, last = f"{a1}{a2:02d}", f"{e1}{e2:02d}", f"{line:04d}"
    written = form.format(a=area, e=exch, l=last)
    cmd = parse_command("@call " + written)
    assert cmd is not None
    assert cmd.numbers == [f"+1{area}{exch}{last}"], written


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_mention_in_email_never_counts(local: str) -> None:
    local = "".join(c for c in local if c.isalnum()) or "x"
    assert not mentions_ai(f"{local}@ai.com")
