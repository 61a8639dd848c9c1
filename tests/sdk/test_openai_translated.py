"""The official `openai` SDK against anyint's OpenAI family, calling models served by
Anthropic-kind (claude-sonnet-4-5) and Gemini-kind (gemini-2.5-flash) upstreams, so every
request and response is translated."""

import json
import re

import httpx2
import openai
import pytest

from conftest import tag

MODELS = ["claude-sonnet-4-5", "gemini-2.5-flash"]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)


def user(text):
    return [{"role": "user", "content": text}]


def stream_text(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("model", MODELS)
def test_chat_completion(client, model):
    resp = client.chat.completions.create(model=model, messages=user("Reply with exactly: AnyInt OK"))
    assert resp.object == "chat.completion"
    assert len(resp.choices) == 1
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "AnyInt OK"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.model == model


@pytest.mark.parametrize("model", MODELS)
def test_chat_completion_with_system_and_sampling_params(client, model):
    resp = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Reply with exactly: with params"},
        ],
        temperature=0.5,
        top_p=0.9,
        max_tokens=64,
    )
    assert resp.choices[0].message.content == "with params"
    assert resp.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_truncation_reports_length(client, model):
    resp = client.chat.completions.create(
        model=model, messages=user("Reply with exactly: one two three four five"), max_completion_tokens=2
    )
    assert resp.choices[0].message.content == "one two"
    assert resp.choices[0].finish_reason == "length"


@pytest.mark.parametrize("model", MODELS)
def test_stream_without_include_usage_has_no_usage_chunk(client, model):
    chunks = list(client.chat.completions.create(model=model, stream=True, messages=user("Reply with exactly: one two three")))
    assert chunks
    assert stream_text(chunks) == "one two three"
    assert all(c.choices for c in chunks), "a usage-only chunk reached a client that did not ask"
    assert all(c.usage is None for c in chunks)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.model == model for c in chunks)


@pytest.mark.parametrize("model", MODELS)
def test_stream_with_include_usage_ends_with_usage(client, model):
    chunks = list(
        client.chat.completions.create(
            model=model, stream=True, stream_options={"include_usage": True}, messages=user("Reply with exactly: a b")
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert sum(1 for c in chunks if not c.choices) == 1
    assert stream_text(chunks) == "a b"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_round_trip(client, model):
    first = client.chat.completions.create(
        model=model, messages=user("What is the weather in Oslo?"), tools=TOOLS, tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test"}

    second = client.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=user("What is the weather in Oslo?")
        + [choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "3C rain"}],
    )
    content = second.choices[0].message.content
    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls
    assert content.startswith("Tool result received: ")
    assert "3C rain" in content


@pytest.mark.parametrize("model", MODELS)
def test_named_tool_choice(client, model):
    tools = TOOLS + [
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
            },
        }
    ]
    resp = client.chat.completions.create(
        model=model,
        messages=user("What time is it?"),
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = resp.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_time"]
    assert json.loads(calls[0].function.arguments) == {"zone": "test"}


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_call_arguments_reassemble(client, model):
    chunks = list(
        client.chat.completions.create(
            model=model,
            stream=True,
            stream_options={"include_usage": True},
            messages=user("What is the weather in Oslo?"),
            tools=TOOLS,
            tool_choice="required",
        )
    )
    calls = {}
    for c in chunks:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                assert slot["id"] in (None, tc.id), "tool call id changed mid-stream"
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                assert slot["name"] is None, "tool call name sent twice"
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
    assert list(calls) == [0]
    call = calls[0]
    assert call["id"]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "test"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_result_round_trip(client, model):
    first = client.chat.completions.create(
        model=model, messages=user("What is the weather in Oslo?"), tools=TOOLS, tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    chunks = list(
        client.chat.completions.create(
            model=model,
            stream=True,
            tools=TOOLS,
            messages=user("What is the weather in Oslo?")
            + [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "3C rain"}],
        )
    )
    text = stream_text(chunks)
    assert text.startswith("Tool result received: ")
    assert "3C rain" in text
    assert chunks[-1].choices[0].finish_reason == "stop"


TWO_TOOLS = TOOLS + [
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
        },
    }
]


@pytest.mark.parametrize("model", MODELS)
def test_parallel_tool_calls_streamed_by_index(client, model):
    chunks = list(
        client.chat.completions.create(
            model=model, stream=True, tools=TWO_TOOLS, messages=user("Use get_weather and get_time, please.")
        )
    )
    calls = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            slot["id"] = slot["id"] or tc.id
            slot["name"] = slot["name"] or (tc.function.name if tc.function else None)
            slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert sorted(calls) == [0, 1]
    assert [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in (0, 1)] == [
        ("get_weather", {"city": "test"}),
        ("get_time", {"zone": "test"}),
    ]
    assert calls[0]["id"] and calls[1]["id"] and calls[0]["id"] != calls[1]["id"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@pytest.mark.parametrize("model", MODELS)
def test_parallel_tool_calls_false_gives_one_call(client, model):
    both = client.chat.completions.create(model=model, tools=TWO_TOOLS, messages=user("Use get_weather and get_time, please."))
    assert [c.function.name for c in both.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    request = dict(model=model, tools=TWO_TOOLS, parallel_tool_calls=False, messages=user("Use get_weather and get_time, please."))
    # Gemini has no switch for it: the gateway keeps the turn's first call (issue 14).
    one = client.chat.completions.create(**request)
    assert [c.function.name for c in one.choices[0].message.tool_calls] == ["get_weather"]


@pytest.mark.parametrize("model", MODELS)
def test_stop_sequence(client, model):
    resp = client.chat.completions.create(model=model, stop=["STOP"], messages=user("Reply with exactly: one STOP two"))
    assert resp.choices[0].message.content == "one "
    assert resp.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_image_and_developer_message(client, model):
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    resp = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Reply with exactly: a picture"}, {"type": "image_url", "image_url": {"url": png}}]},
        ],
    )
    assert resp.choices[0].message.content == "a picture"


@pytest.mark.parametrize("model", MODELS)
def test_n_greater_than_one_is_rejected(gateway, client, model):
    t = tag()
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, n=2, messages=user(f"hi [emulate: tag={t}]"))
    assert e.value.status_code == 400
    assert re.search(r"\bn\b", e.value.message), e.value.message
    assert e.value.param == "n"
    assert gateway.emulator_count(t) == 0


@pytest.mark.parametrize("model", MODELS)
def test_upstream_throttle_raises_rate_limit_with_retry_after(client, model):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=model, messages=user("hi [emulate: status=429 retry_after=30]"))
    assert e.value.response.headers["retry-after"] == "30"
    assert e.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_outage_raises_internal_server_error_503(client, model):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=model, messages=user("hi [emulate: status=500]"))
    assert e.value.status_code == 503
    assert e.value.code == "upstream_unavailable"


@pytest.mark.parametrize("model", MODELS)
def test_sdk_retries_503_and_succeeds(gateway, model):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=2)
    t = tag()
    resp = c.chat.completions.create(
        model=model, messages=user(f"Reply with exactly: ok [emulate: status=503 times=2 tag={t}]")
    )
    assert resp.choices[0].message.content == "ok"
    assert gateway.emulator_count(t) == 3


@pytest.mark.parametrize("model", MODELS + ["gpt-4o-mini"])  # gpt-4o-mini: the passthrough, for comparison
def test_mid_stream_failure_is_one_error_at_the_end(gateway, model):
    r = httpx2.post(
        gateway.base + "/openai/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": model, "stream": True, "messages": user("Reply with exactly: a b c d e f [emulate: error_after=3]")},
        timeout=60,
    )
    assert r.status_code == 200
    events = [b for b in r.content.decode("utf-8").replace("\r\n", "\n").split("\n\n") if b.strip()]
    assert all(e.startswith("data: ") for e in events), events
    payloads = [e[len("data: "):] for e in events]
    assert "[DONE]" not in payloads
    parsed = [json.loads(p) for p in payloads]
    errs = [i for i, p in enumerate(parsed) if "error" in p]
    assert len(errs) == 1, f"expected exactly one error event, got {[p for p in parsed if 'error' in p]!r}"
    assert errs[0] == len(parsed) - 1
    assert parsed[-1]["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_raises_in_sdk(client, model):
    with pytest.raises(openai.APIError) as e:
        list(client.chat.completions.create(model=model, stream=True, messages=user("Reply with exactly: a b c d e f [emulate: error_after=3]")))
    assert e.value.message
