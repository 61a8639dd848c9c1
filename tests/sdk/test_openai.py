"""The official `openai` SDK against anyint's OpenAI-compatible family, unchanged but for
base_url and api_key."""

import json

import openai
import pytest

from conftest import tag


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)


def user(text):
    return [{"role": "user", "content": text}]


def test_models_list_shows_entitled_models(gateway, client):
    ids = [m.id for m in client.models.list()]
    # The OpenAI list is the full discovery list: chat models, then the task models.
    assert ids == ["gpt-4o-mini", "gpt-4o", "gpt-5", "claude-sonnet-4-5", "gemini-2.5-flash", "claude-search", "gemini-search", "wan2.2-t2v-plus", "wan2.2-t2i-flash", "V4_5", "text-embedding-3-small", "gemini-embedding-001"]
    restricted = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.restricted_key)
    assert [m.id for m in restricted.models.list()] == ["gpt-4o"]
    model = client.models.retrieve("gpt-4o-mini")
    assert model.owned_by == "openai" and model.object == "model"


def test_chat_completion(client):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=user("Reply with exactly: AnyInt OK"))
    assert resp.choices[0].message.content == "AnyInt OK"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0


def test_response_carries_request_id(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user("hi"))
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.content


def test_stream_without_include_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", stream=True, messages=user("Reply with exactly: one two three")))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert all(c.choices for c in chunks), "a usage-only chunk reached a client that did not ask"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_with_include_usage_ends_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", stream=True, stream_options={"include_usage": True}, messages=user("Reply with exactly: a b")
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b"


def test_tool_call_round_trip(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    first = client.chat.completions.create(model="gpt-4o", messages=user("weather in Oslo?"), tools=tools, tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    second = client.chat.completions.create(
        model="gpt-4o",
        tools=tools,
        messages=user("weather in Oslo?")
        + [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "3C rain"}],
    )
    assert "3C rain" in second.choices[0].message.content


def test_bad_key_raises_authentication_error(gateway):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key="sk-anyint-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        c.models.list()
    assert e.value.status_code == 401
    assert e.value.code == "invalid_api_key"
    assert e.value.request_id


def test_unentitled_model_raises_permission_denied(gateway):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.restricted_key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as e:
        c.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert e.value.code == "model_not_allowed"
    assert "/openai/v1/models" in e.value.message


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=user("hi"))
    assert e.value.code == "model_not_found"


def test_invalid_request_raises_bad_request_with_param(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.param == "messages"


def test_upstream_throttle_raises_rate_limit_with_retry_after(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("hi [emulate: status=429 retry_after=30]"))
    assert e.value.response.headers["retry-after"] == "30"
    assert e.value.code == "rate_limit_exceeded"


def test_upstream_outage_raises_internal_server_error_503(client):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("hi [emulate: status=500]"))
    assert e.value.status_code == 503
    assert e.value.code == "upstream_unavailable"


def test_sdk_retries_503_and_succeeds(gateway):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=2)
    t = tag()
    resp = c.chat.completions.create(model="gpt-4o-mini", messages=user(f"Reply with exactly: ok [emulate: status=503 times=2 tag={t}]"))
    assert resp.choices[0].message.content == "ok"
    assert gateway.emulator_count(t) == 3


def test_sdk_honours_retry_after_on_429(gateway):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=2)
    t = tag()
    resp = c.chat.completions.create(model="gpt-4o-mini", messages=user(f"Reply with exactly: ok [emulate: status=429 retry_after=1 times=1 tag={t}]"))
    assert resp.choices[0].message.content == "ok"
    assert gateway.emulator_count(t) == 2


def test_sdk_does_not_retry_final_errors(gateway):
    c = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.restricted_key, max_retries=2)
    t = tag()
    with pytest.raises(openai.PermissionDeniedError):
        c.chat.completions.create(model="gpt-4o-mini", messages=user(f"hi [emulate: tag={t}]"))
    # Refused at the gateway: nothing reached the upstream, and the SDK did not retry.
    assert gateway.emulator_count(t) == 0
