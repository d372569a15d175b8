"""The OpenAI chat simulator, driven by the official openai SDK."""

from __future__ import annotations

import time

import openai
import pytest
import requests

from tests.sandbox.conftest import OpenAISim

SYSTEM = {"role": "system", "content": "You are the GateFrames assistant."}


def test_chat_completion_is_deterministic_and_realistic(oai: OpenAISim) -> None:
    messages = [
        SYSTEM,
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "  Do you sell\n slide gates?  "},
    ]
    resp = oai.client().chat.completions.create(model="gpt-5.5", messages=messages)
    text = resp.choices[0].message.content
    assert text == 'GateFrames sim reply to: "Do you sell slide gates?" (context messages: 4)'
    assert not text.startswith("This is the GateFrames A.I. assistant.")
    assert resp.id.startswith("chatcmpl-") and resp.object == "chat.completion"
    assert (resp.model, resp.choices[0].finish_reason) == ("gpt-5.5", "stop")
    assert resp.choices[0].message.role == "assistant" and resp.choices[0].message.refusal is None
    usage = resp.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert usage.completion_tokens_details.reasoning_tokens > 0  # a reasoning model
    [logged] = oai.control("GET", "requests")[1]
    assert logged["body"] == {"model": "gpt-5.5", "messages": messages}
    assert logged["status"] == 200 and logged["time"] <= time.time()


def test_long_text_is_trimmed_and_images_are_noticed(oai: OpenAISim) -> None:
    long = "gate " * 100
    resp = oai.client().chat.completions.create(
        model="gpt-4.1",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": long},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                ],
            }
        ],
    )
    text = resp.choices[0].message.content
    quoted = text.split('"')[1]
    assert len(quoted) == 200 and quoted.endswith("…")
    assert text.endswith("(context messages: 1; I saw 1 image)")


def test_max_tokens_is_refused_by_reasoning_models_only(oai: OpenAISim) -> None:
    client = oai.client()
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-5.5", messages=messages, max_tokens=100)
    assert refused.value.status_code == 400
    assert refused.value.body == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
    ok = client.chat.completions.create(model="gpt-4.1", messages=messages, max_tokens=100)
    assert ok.choices[0].finish_reason == "stop"
    fine = client.chat.completions.create(
        model="gpt-5.5", messages=messages, max_completion_tokens=500
    )
    assert fine.choices[0].message.content.startswith("GateFrames sim reply")
    starved = client.chat.completions.create(
        model="gpt-5.5", messages=messages, max_completion_tokens=10
    )
    assert (starved.choices[0].message.content, starved.choices[0].finish_reason) == ("", "length")


def test_temperature_must_be_default_on_reasoning_models(oai: OpenAISim) -> None:
    client = oai.client()
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-5.5", messages=messages, temperature=0.7)
    assert refused.value.code == "unsupported_value" and refused.value.param == "temperature"
    assert refused.value.message.endswith(
        "Unsupported value: 'temperature' does not support 0.7 with this model. "
        "Only the default (1) value is supported."
    )
    assert client.chat.completions.create(model="gpt-5.5", messages=messages, temperature=1)
    assert client.chat.completions.create(model="gpt-4.1", messages=messages, temperature=0.7)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-4.1", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4.1"}, "messages", "missing_required_parameter"),
        ({"model": "gpt-4.1", "messages": [{"role": "boss", "content": "x"}]}, None, None),
        ({"model": "gpt-4.1", "messages": [{"role": "user", "content": 5}]}, None, None),
        ({"messages": [{"role": "user", "content": "x"}]}, None, None),
        (
            {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}], "foo": 1},
            None,
            None,
        ),
    ],
)
def test_malformed_requests_are_refused(
    oai: OpenAISim, body: dict, param: str | None, code: str | None
) -> None:
    resp = requests.post(
        f"{oai.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {oai.api_key}"},
        timeout=5,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert (error["param"], error["code"]) == (param, code)


def test_retired_and_non_chat_models_are_not_found(oai: OpenAISim) -> None:
    client = oai.client()
    with pytest.raises(openai.NotFoundError) as gone:
        client.chat.completions.create(
            model="gpt-4o-realtime-preview-2024-12-17", messages=[{"role": "user", "content": "x"}]
        )
    assert gone.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-realtime", messages=[{"role": "user", "content": "x"}]
        )


def test_wrong_key_is_401(oai: OpenAISim) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        oai.client(api_key="sk-wrong-key-123456").chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "x"}]
        )
    assert denied.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in denied.value.message  # the key is masked
    assert "3456" in denied.value.message


def test_faults_surface_as_sdk_errors(oai: OpenAISim) -> None:
    client = oai.client()
    messages = [{"role": "user", "content": "are you there?"}]
    assert oai.control("POST", "faults", {"status": 500, "count": 1})[0] == 201
    assert oai.control("POST", "faults", {"status": 429, "count": 1})[0] == 201
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-5.5", messages=messages)
    assert failed.value.body["message"] == (
        "The server had an error while processing your request. Sorry about that!"
    )
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-5.5", messages=messages)
    assert limited.value.code == "rate_limit_exceeded"
    ok = client.chat.completions.create(model="gpt-5.5", messages=messages)
    assert "are you there?" in ok.choices[0].message.content
    statuses = [r["status"] for r in oai.control("GET", "requests")[1]]
    assert statuses == [500, 429, 200]


def test_stall_fault_trips_the_client_timeout(oai: OpenAISim) -> None:
    oai.control("POST", "faults", {"delay_seconds": 1.5})
    with pytest.raises(openai.APITimeoutError):
        oai.client(timeout=0.5).chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "slow"}]
        )
    # the stalled request is logged while still in flight
    [inflight] = oai.control("GET", "requests")[1]
    assert inflight["body"]["messages"][0]["content"] == "slow"
    assert oai.control("GET", "faults")[1] == {"faults": []}


def _post(oai: OpenAISim, messages: list[dict]) -> requests.Response:
    return requests.post(
        f"{oai.url}/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": messages},
        headers={"Authorization": f"Bearer {oai.api_key}"},
        timeout=5,
    )


AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {"type": "file", "file": {"file_id": "file-abc123"}}


def test_user_parts_of_every_sdk_type_are_accepted(oai: OpenAISim) -> None:
    # every member of openai.types.chat.ChatCompletionContentPartParam, through the SDK
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
    user = {"role": "user", "content": [{"type": "text", "text": "see"}, image, AUDIO, FILE]}
    assistant = {
        "role": "assistant",
        "content": [{"type": "text", "text": "ok"}, {"type": "refusal", "refusal": "no"}],
    }
    system = {"role": "system", "content": [{"type": "text", "text": "be brief"}]}
    resp = oai.client().chat.completions.create(
        model="gpt-4.1", messages=[system, user, assistant, {"role": "user", "content": "and?"}]
    )
    assert resp.choices[0].message.content.startswith('GateFrames sim reply to: "and?"')


@pytest.mark.parametrize(
    ("message", "allowed"),
    [
        # a type no role takes ("input_text" is the Responses API's name, a common mix-up)
        (
            {"role": "user", "content": [{"type": "input_text", "text": "x"}]},
            "'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'",
        ),
        (
            {"role": "user", "content": [{"type": "refusal", "refusal": "x"}]},
            "'text', 'image_url', 'input_audio', and 'file'",
        ),
        (
            {"role": "user", "content": [{"type": "audio", "audio": {"id": "audio_1"}}]},
            "'text', 'image_url', 'input_audio', and 'file'",
        ),
        ({"role": "assistant", "content": [FILE]}, "'text' and 'refusal'"),
        ({"role": "assistant", "content": [AUDIO]}, "'text' and 'refusal'"),
        ({"role": "system", "content": [AUDIO]}, "'text'"),
        ({"role": "developer", "content": [{"type": "refusal", "refusal": "x"}]}, "'text'"),
        ({"role": "tool", "tool_call_id": "call_1", "content": [FILE]}, "'text'"),
    ],
)
def test_part_types_a_role_does_not_take_are_refused(
    oai: OpenAISim, message: dict, allowed: str
) -> None:
    resp = _post(oai, [message])
    kind = message["content"][0]["type"]
    assert resp.status_code == 400
    assert resp.json() == {
        "error": {
            "message": f"Invalid value: '{kind}'. Supported values are: {allowed}.",
            "type": "invalid_request_error",
            "param": "messages[0].content[0].type",
            "code": "invalid_value",
        }
    }


def test_image_in_a_non_user_message_is_refused_with_the_real_wording(oai: OpenAISim) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
    resp = _post(
        oai, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [image]}]
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "message": "Invalid 'messages[1]'. Image URLs are only allowed for messages with role "
        "'user', but this message with role 'assistant' contains an image URL.",
        "type": "invalid_request_error",
        "param": "messages[1].content[0].type",
        "code": "invalid_value",
    }


@pytest.mark.parametrize(
    ("part", "param", "code"),
    [
        (
            {"type": "input_audio"},
            "messages[0].content[0].input_audio",
            "missing_required_parameter",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "ogg"}},
            "messages[0].content[0].input_audio.format",
            "invalid_value",
        ),
        ({"type": "file", "file": "file-abc123"}, "messages[0].content[0].file", "invalid_type"),
        ({"type": "refusal"}, "messages[0].content[0].refusal", "missing_required_parameter"),
    ],
)
def test_malformed_parts_are_refused(oai: OpenAISim, part: dict, param: str, code: str) -> None:
    role = "assistant" if part["type"] == "refusal" else "user"
    error = _post(oai, [{"role": role, "content": [part]}]).json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_function_message_content_must_be_a_string(oai: OpenAISim) -> None:
    message = {"role": "function", "name": "f", "content": [{"type": "text", "text": "x"}]}
    error = _post(oai, [message]).json()["error"]
    assert (error["param"], error["code"]) == ("messages[0].content", "invalid_type")
    assert error["message"] == (
        "Invalid type for 'messages[0].content': expected a string, but got an array instead."
    )
