"""common.stream_twiml: the stream's <Parameter> contract that /twilio/voice writes and the
relay reads, and the TwiML that carries it."""

from __future__ import annotations

import pytest

from common.stream_twiml import Param, call_kind, is_outbound, other_party, stream_parameters


def test_the_parameters_of_a_new_call_use_the_contract_names() -> None:
    params = stream_parameters(
        answered_by="human", direction="inbound", call_sid="CA1", from_="+1415", to="+1408"
    )
    assert params == {
        "amd": "human",
        "direction": "inbound",
        "callSid": "CA1",
        "from": "+1415",
        "to": "+1408",
    }
    assert Param.RESUME == "resume"


def test_callee_is_to_on_outbound_calls_and_from_otherwise() -> None:
    params = {"direction": "outbound", "from": "+14082605145", "to": "+14155550000"}
    assert other_party(params) == "+14155550000" and is_outbound(params)
    assert other_party({**params, "direction": "inbound"}) == "+14082605145"
    assert other_party({}) == "" and not is_outbound({})


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"amd": "machine_end_beep", "direction": "outbound"}, "voicemail"),
        ({"amd": "human", "direction": "outbound"}, "outbound"),
        ({"direction": "Inbound"}, "inbound"),
        ({"direction": "sideways"}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_call_kind(params: dict[str, str], kind: str) -> None:
    assert call_kind(params) == kind
